package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"sync"

	"github.com/aurax/aurax/pool"
	"github.com/gofiber/fiber/v2"
)

// Ollama's blob endpoints over the pool. HEAD /api/blobs/:digest is 200
// only when every engine has the blob (else 404, so that the client
// uploads it); POST streams the upload to every engine that lacks it at
// once, never holding it in memory (the app streams request bodies; see
// readBody), and answers 201 when it was created, 200 when every engine
// had it, or an engine's error (400 digest mismatch).

// digestRE is what Ollama accepts as a blob digest (manifest.BlobsPath).
var digestRE = regexp.MustCompile(`^sha256[:-][0-9a-fA-F]{64}$`)

func blobDigest(c *fiber.Ctx) (string, error) {
	d := c.Params("digest")
	if !digestRE.MatchString(d) {
		return "", newError(fiber.StatusBadRequest, "invalid digest format") // Ollama's words
	}
	return d, nil
}

// blobsHave asks every engine whether it has the blob: nil for each that
// has it, its error otherwise (404: it lacks it).
func (s *Server) blobsHave(ctx context.Context, engines []pool.Target, digest string) []error {
	errs := make([]error, len(engines))
	var wg sync.WaitGroup
	for i, t := range engines {
		wg.Go(func() {
			resp, err := s.engineDo(ctx, t, http.MethodHead, "/api/blobs/"+digest, nil, 0)
			if err == nil {
				resp.Body.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errs
}

func isNotFound(err error) bool {
	var ee *engineError
	return errors.As(err, &ee) && ee.status == fiber.StatusNotFound
}

// blobEngines is a blob call's digest and the engines it goes to.
func (s *Server) blobEngines(c *fiber.Ctx) (string, []pool.Target, error) {
	digest, err := blobDigest(c)
	if err != nil {
		return "", nil, err
	}
	engines, err := s.managed()
	return digest, engines, err
}

func (s *Server) ollamaBlobHead(c *fiber.Ctx) error {
	digest, engines, err := s.blobEngines(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.manageCtx()
	defer cancel()
	errs := s.blobsHave(ctx, engines, digest)
	for _, err := range errs {
		if isNotFound(err) {
			return newError(fiber.StatusNotFound, "blob %q not found", digest)
		}
	}
	if he := outcome(engines, errs); he != nil {
		return he
	}
	return c.SendStatus(fiber.StatusOK)
}

// bodyDone marks a blob upload whose body was read to its end: its
// connection may stay open (readBody closes the others).
type bodyDone struct{}

func (s *Server) ollamaBlobUpload(c *fiber.Ctx) error {
	digest, engines, err := s.blobEngines(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.manageCtx()
	defer cancel()
	stop := s.watch.watch(c.Context().Conn(), cancel)
	defer stop()
	have := s.blobsHave(ctx, engines, digest)
	var need []pool.Target
	var needErrs []error
	for i, err := range have {
		switch {
		case err == nil:
		case isNotFound(err):
			need = append(need, engines[i])
		default:
			needErrs = append(needErrs, err)
		}
	}
	if len(needErrs) > 0 {
		return outcome(engines, have)
	}
	if len(need) == 0 {
		return c.SendStatus(fiber.StatusOK) // as Ollama: it was there; the body is not read
	}
	size := int64(c.Request().Header.ContentLength())
	if size < 0 {
		size = -1
	}
	errs, read := s.uploadBlob(ctx, need, digest, c.Context().RequestBodyStream(), size)
	if read {
		c.Locals(bodyDone{}, true)
	}
	if he := outcome(need, errs); he != nil {
		return he
	}
	return c.SendStatus(fiber.StatusCreated)
}

// errEngineStopped ends the copy to an engine that answered before it read
// the whole upload.
var errEngineStopped = errors.New("the engine stopped reading")

// uploadBlob copies body to every engine of need at once (the slowest sets
// the pace) and returns each engine's outcome, and whether body was read
// to its end.
func (s *Server) uploadBlob(ctx context.Context, need []pool.Target, digest string, body io.Reader, size int64) ([]error, bool) {
	errs := make([]error, len(need))
	pipes := make([]*io.PipeWriter, len(need))
	var wg sync.WaitGroup
	for i, t := range need {
		pr, pw := io.Pipe()
		pipes[i] = pw
		wg.Go(func() {
			resp, err := s.engineDo(ctx, t, http.MethodPost, "/api/blobs/"+digest, pr, size)
			if err == nil {
				resp.Body.Close()
			}
			errs[i] = err
			pr.CloseWithError(errEngineStopped)
		})
	}
	bp := lingerBufs.Get().(*[]byte)
	defer lingerBufs.Put(bp)
	live, read := len(pipes), false
	for live > 0 {
		n, rerr := body.Read(*bp)
		for i, pw := range pipes {
			if pw == nil || n == 0 {
				continue
			}
			if _, err := pw.Write((*bp)[:n]); err != nil {
				pipes[i], live = nil, live-1
			}
		}
		if rerr != nil {
			read = errors.Is(rerr, io.EOF)
			if read {
				rerr = nil
			}
			for _, pw := range pipes {
				if pw != nil {
					pw.CloseWithError(rerr) // nil: EOF, the upload is complete
				}
			}
			break
		}
	}
	for _, pw := range pipes {
		if pw != nil {
			pw.Close()
		}
	}
	wg.Wait()
	return errs, read
}
