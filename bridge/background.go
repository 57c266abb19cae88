package bridge

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Run resumes tracking the open sessions in the store and then, until ctx ends, polls VCC for
// active sessions and settles those past their TTL. Each tick starts what is due in free work
// slots and does not wait for it: a slow VCC answer holds up its own session, not the others.
func (s *Service) Run(ctx context.Context) error {
	if err := s.ensureLoaded(ctx); err != nil {
		s.logger.ErrorContext(ctx, "load open sessions", "err", err)
	}
	t := time.NewTicker(s.sweepInterval)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.sweep(ctx, &wg, false)
		}
	}
}

// Sweep does one round of background work, due by the service's clock: settle sessions past
// their TTL, fail sessions left pending by a process that died mid-create, and poll VCC for
// active sessions whose poll is due. It returns when that round is done.
func (s *Service) Sweep(ctx context.Context) {
	var wg sync.WaitGroup
	s.sweep(ctx, &wg, true)
	wg.Wait()
}

// sweep starts the due work on the service's shared slots, sessions past their TTL first. With
// wait false, work that finds no free slot is left for the next round.
func (s *Service) sweep(ctx context.Context, wg *sync.WaitGroup, wait bool) {
	if err := s.ensureLoaded(ctx); err != nil {
		s.logger.ErrorContext(ctx, "load open sessions", "err", err)
		return
	}
	now := s.clock.Now()
	if s.shared && s.tracker.reloadDue(now, s.reload) {
		if err := s.reloadOpen(ctx); err != nil {
			s.logger.WarnContext(ctx, "reload open sessions", "err", err)
		}
	}
	due := s.tracker.due(now)
	slices.SortStableFunc(due, func(a, b tracked) int {
		return boolRank(!now.Before(a.expiresAt)) - boolRank(!now.Before(b.expiresAt))
	})
	for i, d := range due {
		if wait {
			s.work <- struct{}{}
		} else {
			select {
			case s.work <- struct{}{}:
			default:
				for _, left := range due[i:] {
					s.tracker.release(left.id)
				}
				return
			}
		}
		wg.Go(func() {
			defer func() { <-s.work }()
			ctx, cancel := context.WithTimeout(ctx, backgroundTimeout)
			defer cancel()
			if mine, err := s.leaser.ClaimSession(ctx, d.id); err != nil || !mine {
				// Another live node does this session's work (or the store cannot say): ask
				// again later, which is when this node takes over if that node has died.
				if err != nil && ctx.Err() == nil {
					s.logger.WarnContext(ctx, "claim session work", "session", d.id, "err", err)
				}
				s.tracker.elsewhere(d.id, s.clock.Now().Add(s.reload))
				return
			}
			var err error
			switch {
			case !now.Before(d.expiresAt):
				_, err = s.execute(ctx, d.id, trigger{kind: trigTTL})
			case d.pending:
				_, err = s.execute(ctx, d.id, trigger{kind: trigAbandoned})
			default:
				err = s.poll(ctx, d.id)
			}
			if err != nil && ctx.Err() == nil {
				s.logger.WarnContext(ctx, "background session work", "session", d.id, "err", err)
			}
			s.tracker.done(d.id, s.nextPoll(s.clock.Now()))
		})
	}
}

// boolRank orders true before false.
func boolRank(b bool) int {
	if b {
		return 0
	}
	return 1
}

// poll asks VCC about the current attempt of session id, and now and then about the attempts it
// replaced, and runs what it hears through the lifecycle.
func (s *Service) poll(ctx context.Context, id string) error {
	sess, err := s.store.Session(ctx, id)
	if err != nil {
		return err
	}
	switch {
	case !sess.Open():
		s.tracker.untrack(id)
		return nil
	case sess.Status == StatusPending:
		return nil
	}
	var guids []string
	if sess.Status == StatusActive {
		guids = append(guids, sess.Current().SessionGUID)
	}
	if older := unsettled(sess, s.clock.Now(), s.rules.retention); len(older) > 0 && s.tracker.olderDue(id, s.clock.Now(), askEvery(older, s.clock.Now(), s.rules.retention)) {
		guids = append(guids, guidsOf(older)...)
	}
	for _, guid := range guids {
		if sess, err = s.store.Session(ctx, id); err != nil {
			return err
		}
		if err := s.checkAttempt(ctx, sess, guid); err != nil {
			return err
		}
	}
	return nil
}

// askEvery is how often attempts that ended here are asked about: every olderAttemptsEvery
// while one of them ended within VCC's retention (a payment made as it ended is still being
// reported), then every linkAttemptsEvery (digital links, payable for days: a result found a
// minute late is still well within the retention).
func askEvery(older []Attempt, now time.Time, retention time.Duration) time.Duration {
	for _, a := range older {
		if now.Sub(a.EndedAt) < retention {
			return olderAttemptsEvery
		}
	}
	return linkAttemptsEvery
}

// nextPoll spreads polls by ±20% so sessions created together do not poll together.
func (s *Service) nextPoll(now time.Time) time.Time {
	jitter := 0.8 + 0.4*rand.Float64()
	return now.Add(time.Duration(float64(s.pollInterval) * jitter))
}

// ensureLoaded fills the tracker from the store's open sessions once; after a restart this is
// what resumes polling and expiry.
func (s *Service) ensureLoaded(ctx context.Context) error {
	s.tracker.loadMu.Lock()
	defer s.tracker.loadMu.Unlock()
	if s.tracker.loaded {
		return nil
	}
	open, err := s.store.OpenSessions(ctx)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	for _, sess := range open {
		s.tracker.trackIfAbsent(sess, now, now.Add(pendingGrace))
	}
	s.tracker.loaded = true
	if len(open) > 0 {
		s.logger.InfoContext(ctx, "resumed open sessions", "count", len(open))
	}
	return nil
}

// reloadOpen tracks the open sessions of a shared store that this node does not know yet: those
// other nodes created, whose work this node takes over should their owner die.
func (s *Service) reloadOpen(ctx context.Context) error {
	open, err := s.store.OpenSessions(ctx)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	for _, sess := range open {
		s.tracker.trackIfAbsent(sess, now, now.Add(pendingGrace))
	}
	return nil
}

// learnAgent tracks, on a shared store, the agent's open sessions that other nodes created since
// the last reload, so a socket connecting to this node gets them in its snapshot. A failure
// leaves the snapshot to what this node knows.
func (s *Service) learnAgent(ctx context.Context, agent AgentRef) {
	if !s.shared {
		return
	}
	list, err := s.store.ListSessions(ctx, SessionFilter{MerchantID: agent.MerchantID, Mode: agent.Mode, AgentID: agent.AgentID, Limit: 100})
	if err != nil {
		s.logger.WarnContext(ctx, "read the agent's sessions", "err", err)
		return
	}
	now := s.clock.Now()
	for _, sess := range list {
		if sess.Open() {
			s.tracker.trackIfAbsent(sess, now, now.Add(pendingGrace))
		}
	}
}
