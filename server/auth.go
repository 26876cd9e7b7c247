package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"github.com/aurax/aurax/config"
	"github.com/gofiber/fiber/v2"
)

// auth checks API keys in constant time. Only SHA-256 digests of the keys
// are kept; keys never reach logs or metrics.
type auth struct {
	apiKeys     [][32]byte
	adminKeys   [][32]byte
	metricsKeys [][32]byte
}

func newAuth(cfg config.Auth) *auth {
	a := &auth{}
	for _, k := range cfg.APIKeys {
		if k = strings.TrimSpace(k); k != "" {
			a.apiKeys = append(a.apiKeys, sha256.Sum256([]byte(k)))
		}
	}
	if cfg.AdminKey != "" {
		a.adminKeys = append(a.adminKeys, sha256.Sum256([]byte(cfg.AdminKey)))
		// The admin key may use the API too.
		if len(a.apiKeys) > 0 {
			a.apiKeys = append(a.apiKeys, a.adminKeys[0])
		}
	}
	if cfg.MetricsKey != "" {
		a.metricsKeys = append(a.metricsKeys, sha256.Sum256([]byte(cfg.MetricsKey)))
	}
	return a
}

// match compares the bearer token against every key without stopping early.
func match(c *fiber.Ctx, keys [][32]byte) bool {
	h := c.Get(fiber.HeaderAuthorization)
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		token, ok = strings.CutPrefix(h, "bearer ")
	}
	if !ok || token == "" {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	found := 0
	for i := range keys {
		found |= subtle.ConstantTimeCompare(sum[:], keys[i][:])
	}
	return found == 1
}

func unauthorized(c *fiber.Ctx) error {
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="aurax"`)
	msg := "missing API key: send Authorization: Bearer <key>"
	if c.Get(fiber.HeaderAuthorization) != "" {
		msg = "invalid API key"
	}
	return &Error{Status: fiber.StatusUnauthorized, Code: "invalid_api_key", Message: msg}
}

// publicPaths under /v1 and /api need no key: peers read this replica's
// load signals (the same figures /health shows) without credentials.
var publicPaths = map[string]bool{"/v1/scaling/signals": true}

// api guards /v1 and /api when API keys are configured.
func (a *auth) api(c *fiber.Ctx) error {
	if len(a.apiKeys) == 0 || publicPaths[c.Path()] || match(c, a.apiKeys) {
		return c.Next()
	}
	return unauthorized(c)
}

// metrics guards /metrics when a metrics key is configured.
func (a *auth) metrics(c *fiber.Ctx) error {
	if len(a.metricsKeys) == 0 || match(c, a.metricsKeys) {
		return c.Next()
	}
	return unauthorized(c)
}

// adminOnly guards admin endpoints: they need the admin key, and are closed
// when none is configured.
func (a *auth) adminOnly(c *fiber.Ctx) error {
	if len(a.adminKeys) == 0 {
		return &Error{Status: fiber.StatusForbidden, Message: "admin endpoints are disabled: set AURAX_ADMIN_KEY"}
	}
	if match(c, a.adminKeys) {
		return c.Next()
	}
	return unauthorized(c)
}

// adminWrite guards the routes that change state (RAG writes, model
// management): open when no key of any kind is configured (a local install
// without auth must be able to ingest and pull), the admin key only
// otherwise (403 when auth is on but no admin key is set).
func (a *auth) adminWrite(c *fiber.Ctx) error {
	if len(a.apiKeys) == 0 && len(a.adminKeys) == 0 && len(a.metricsKeys) == 0 {
		return c.Next()
	}
	return a.adminOnly(c)
}
