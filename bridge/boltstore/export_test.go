package boltstore

// Commits returns how many write transactions s has committed and how many writes they held.
func Commits(s *Store) (commits, writes uint64) {
	return s.group.commits.Load(), s.group.writes.Load()
}

// Queued returns how many writes wait for the next round of s's group commit.
func Queued(s *Store) int {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return len(s.group.queue)
}
