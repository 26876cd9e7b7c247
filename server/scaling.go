package server

import (
	"context"
	"errors"
	"time"

	"github.com/aurax/aurax/scaling"
	"github.com/gofiber/fiber/v2"
)

// Scaler is the scaling controller as the API sees it.
type Scaler interface {
	Status() scaling.Status
	// SetManual holds replicas for ttl and applies it now; it fails with
	// scaling.ErrNotLeader on a replica that is not the leader.
	SetManual(ctx context.Context, replicas int, reason string, ttl time.Duration) error
	Pause()
	Resume()
}

// scalingRoutes serves the controller's state, this replica's signals for
// its peers (public, like /health), and the admin controls.
func (s *Server) scalingRoutes(v1 fiber.Router) {
	v1.Get("/scaling/signals", func(c *fiber.Ctx) error {
		return c.JSON(s.metrics.Signals())
	})
	if s.scaler == nil {
		return
	}
	v1.Get("/scaling", func(c *fiber.Ctx) error { return c.JSON(s.scaler.Status()) })
	v1.Post("/scaling/replicas", s.auth.adminOnly, s.scalingReplicas)
	v1.Post("/scaling/pause", s.auth.adminOnly, func(c *fiber.Ctx) error {
		s.scaler.Pause()
		return c.JSON(s.scaler.Status())
	})
	v1.Post("/scaling/resume", s.auth.adminOnly, func(c *fiber.Ctx) error {
		s.scaler.Resume()
		return c.JSON(s.scaler.Status())
	})
}

type manualRequest struct {
	Replicas *int   `json:"replicas"`
	Reason   string `json:"reason"`
	TTL      string `json:"ttl"`
}

// scalingReplicas is the manual override: {replicas, reason, ttl}.
func (s *Server) scalingReplicas(c *fiber.Ctx) error {
	var req manualRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if req.Replicas == nil {
		return badField("replicas", "is required")
	}
	ttl := 10 * time.Minute
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			return badField("ttl", "%q is not a positive duration like 10m", req.TTL)
		}
		ttl = d
	}
	if req.Reason == "" {
		req.Reason = "manual"
	}
	st := s.scaler.Status()
	if *req.Replicas < st.Min || *req.Replicas > st.Max {
		return badField("replicas", "%d is outside [%d, %d]", *req.Replicas, st.Min, st.Max)
	}
	if err := s.scaler.SetManual(c.UserContext(), *req.Replicas, req.Reason, ttl); err != nil {
		if errors.Is(err, scaling.ErrNotLeader) {
			return &Error{Status: fiber.StatusConflict, Message: "this replica is not the scaling leader: " + err.Error(), Err: err}
		}
		return &Error{Status: fiber.StatusBadGateway, Message: "the scaling provider failed: " + err.Error(), Err: err}
	}
	s.log.Info("manual scaling", "replicas", *req.Replicas, "reason", req.Reason, "ttl", ttl)
	return c.JSON(s.scaler.Status())
}
