package server

import (
	"net/url"

	"github.com/gofiber/fiber/v2"
)

// The pool's admin API: the engines as /health lists them, and the drain a
// scaling gateway asks of its peers before it stops an engine
// (pool.GatewayDrainer), so that no gateway sends it a new request.
func (s *Server) poolRoutes(v1 fiber.Router) {
	v1.Get("/pool/engines", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"engines": s.pool.Engines(), "stats": s.pool.Stats()})
	})
	v1.Post("/pool/engines/:engine/drain", s.auth.adminOnly, func(c *fiber.Ctx) error {
		name, err := url.PathUnescape(c.Params("engine"))
		if err != nil {
			return badField("engine", "not a host:port")
		}
		n, ok := s.pool.DrainEngine(name)
		return c.JSON(fiber.Map{"engine": name, "known": ok, "in_flight": n})
	})
	v1.Delete("/pool/engines/:engine", s.auth.adminOnly, func(c *fiber.Ctx) error {
		name, err := url.PathUnescape(c.Params("engine"))
		if err != nil {
			return badField("engine", "not a host:port")
		}
		return c.JSON(fiber.Map{"engine": name, "known": s.pool.ForgetEngine(name)})
	})
}
