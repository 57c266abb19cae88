package bridge

import (
	"context"
)

// HandoffEventData is the data of a session.handoff event.
type HandoffEventData struct {
	*Handoff
	Session *SessionView `json:"session"`
}

// publishHandoff pushes the handoff of sess's current attempt, whose tokens are in memory.
func (s *Service) publishHandoff(sess *Session, m *Merchant) {
	if h := s.handoff(sess, m); h != nil {
		s.publish(sess, EventHandoff, "", HandoffEventData{Handoff: h, Session: sess.View()})
	}
}

// handoff returns the handoff of sess's current attempt with the announcement m's PCI Pal flow is
// configured to post, if any, so the widget knows what to wait for.
func (s *Service) handoff(sess *Session, m *Merchant) *Handoff {
	h := sess.Handoff(s.rules.lifetime)
	if h != nil && m != nil {
		h.Announcement = m.FrameAnnouncement.For(h.IframeURL)
	}
	return h
}

func (s *Service) publish(sess *Session, typ EventType, id string, data any) {
	if id == "" {
		id = NewEventID()
	}
	s.publisher.Publish(&Event{
		Agent: AgentRef{MerchantID: sess.MerchantID, Mode: sess.Mode, AgentID: sess.AgentID},
		Type:  typ, ID: id, SessionID: sess.ID, Data: data,
	})
}

// ReadyData is the data of the ready event a socket gets first: who it is and the agent's open
// sessions with their current handoffs.
type ReadyData struct {
	MerchantID string          `json:"merchantId"`
	Mode       Mode            `json:"mode"`
	AgentID    string          `json:"agentId"`
	Sessions   []SnapshotEntry `json:"sessions"`
}

// SnapshotEntry is one open session in a ready snapshot.
type SnapshotEntry struct {
	Session *SessionView `json:"session"`
	Handoff *Handoff     `json:"handoff,omitempty"`
}

// RefreshAgent restarts every open session of agent whose current attempt is older than the
// provider lifetime (trigger 2): call it when an agent's socket connects, before the snapshot, so
// a reconnecting agent never gets a page the provider will refuse.
func (s *Service) RefreshAgent(ctx context.Context, agent AgentRef) error {
	if err := s.ensureLoaded(ctx); err != nil {
		return err
	}
	s.learnAgent(ctx, agent)
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	for _, id := range s.tracker.ofAgent(agent) {
		if _, err := s.scoped(ctx, agent, id); err != nil {
			continue
		}
		if _, err := s.execute(ctx, id, trigger{kind: trigLifetime}); err != nil {
			s.logger.WarnContext(ctx, "restart on reconnect", "session", id, "err", err)
		}
	}
	return nil
}

// RefreshSession answers a widget about to show attempt of sessionID again (post its tokens into
// a frame once more): an attempt older than the provider lifetime is restarted first (trigger 2),
// and the current handoff is returned for that socket. Nil when the session is no longer active
// (its terminal event tells the widget).
func (s *Service) RefreshSession(ctx context.Context, agent AgentRef, sessionID string, attempt int) (*HandoffEventData, error) {
	if _, err := s.scoped(ctx, agent, sessionID); err != nil {
		return nil, err
	}
	if attempt <= 0 {
		return nil, invalid("attempt", "session.refresh needs the attempt number the widget would show")
	}
	done, err := s.execute(ctx, sessionID, trigger{kind: trigLifetime, attempt: attempt})
	if err != nil {
		return nil, err
	}
	if done.sess.Status != StatusActive {
		return nil, nil
	}
	return s.handoffData(ctx, done.sess)
}

// AgentSnapshot returns agent's open sessions with their current handoffs. Each session is read
// under its lock, so a create or restart in flight is waited for, never half seen: together with
// subscribing before the snapshot, a connecting socket misses no handoff.
func (s *Service) AgentSnapshot(ctx context.Context, agent AgentRef) (*ReadyData, error) {
	if err := s.ensureLoaded(ctx); err != nil {
		return nil, err
	}
	s.learnAgent(ctx, agent)
	out := &ReadyData{MerchantID: agent.MerchantID, Mode: agent.Mode, AgentID: agent.AgentID, Sessions: []SnapshotEntry{}}
	for _, id := range s.tracker.ofAgent(agent) {
		sess, err := s.lockedRead(ctx, agent, id)
		if err != nil {
			s.logger.WarnContext(ctx, "snapshot session", "session", id, "err", err)
			continue
		}
		if sess.Status.Terminal() {
			continue
		}
		entry := SnapshotEntry{Session: sess.View()}
		if sess.Status == StatusActive {
			h, err := s.handoffData(ctx, sess)
			if err != nil {
				s.logger.ErrorContext(ctx, "snapshot tokens", "session", id, "err", err)
			} else if h != nil {
				entry.Handoff = h.Handoff
			}
		}
		out.Sessions = append(out.Sessions, entry)
	}
	return out, nil
}

// lockedRead reads session id within scope under its lock, settling it if its TTL has passed.
// It waits a little for a create or restart in flight; if that takes longer (VCC is slow), its
// handoff is not out yet either: it reaches the socket as an event, after subscribing.
func (s *Service) lockedRead(ctx context.Context, sc AgentRef, id string) (*Session, error) {
	if _, err := s.scoped(ctx, sc, id); err != nil {
		return nil, err
	}
	done, err := s.execute(ctx, id, trigger{kind: trigRead, lockWait: snapshotLockWait})
	return done.sess, err
}

// handoffData returns the handoff of sess's current attempt, its tokens opened, or nil if the
// attempt has ended.
func (s *Service) handoffData(ctx context.Context, sess *Session) (*HandoffEventData, error) {
	m, err := s.merchant(ctx, sess.MerchantID)
	if err != nil {
		return nil, err
	}
	c := sess.Clone()
	if err := s.openTokens(c); err != nil {
		return nil, err
	}
	h := s.handoff(c, m)
	if h == nil {
		return nil, nil
	}
	return &HandoffEventData{Handoff: h, Session: c.View()}, nil
}
