package pool

import (
	"context"
	"errors"
	"fmt"
)

// What the model-management API (pull, delete, copy, create) needs of the
// pool: the engines to apply a change to, and a way to see its effect at
// once.

// Managed is every engine of the pool that is not draining, in the order
// they joined: the engines a model pull, delete, copy or create applies to.
// Engines that are down are included: a change that cannot reach one must
// say so.
func (p *Pool) Managed() []Target {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Target, 0, len(p.engines))
	for _, e := range p.engines {
		if !e.removed && e.state != StateDraining {
			out = append(out, e.Target)
		}
	}
	return out
}

// RefreshModels lists every engine's models (/api/tags) at once, now, and
// updates routing's view of them, so that a model just pulled, created,
// copied or deleted is routed to (or away from) at once rather than at the
// next tags probe (TagsInterval). It returns the failures of the engines
// that did not answer, joined, each naming its engine.
func (p *Pool) RefreshModels(ctx context.Context) error {
	es := p.live()
	errs := make([]error, len(es))
	each(es, func(i int, e *Engine) {
		l, err := e.backend.List(ctx)
		if err != nil {
			errs[i] = fmt.Errorf("engine %s: %w", e.name, err)
			return
		}
		p.setModels(e, l)
	})
	p.mu.Lock()
	p.dispatchLocked() // waiters for a model that just arrived
	p.mu.Unlock()
	return errors.Join(errs...)
}
