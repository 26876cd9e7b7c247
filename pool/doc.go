// Package pool is the set of engines AURAX routes to: Ollama servers found
// by static URLs, DNS or Docker labels, each probed in the background for
// reachability, its models (/api/tags) and its loaded models (/api/ps), with
// its in-flight requests counted here because Ollama does not report them.
//
// The admission queue lives here too, because a granted slot is a slot on
// an engine: Acquire waits (bounded in count and time) until the routing
// picks an engine with a free slot for the request's model, and returns a
// Lease on it. Routing (route.go) is a pure function of the engines' state:
// only routable engines that have the model; an engine with the model
// loaded and a free slot first; a free engine that would have to load the
// model only when the expected wait for a loaded one is longer than the
// load; ties by expected completion time, then power of two choices.
//
// The Pool is also a models.Backend: a call whose context carries a Lease
// (WithLease) runs on the lease's engine, any other call takes a slot
// itself, so embeddings for retrieval and ingest are admitted and routed
// like chat. A call that fails before its first byte (connection refused
// or reset, a 5xx) is retried once on another engine, and the failed engine
// sits out a cooldown that grows with repeated failures until a probe finds
// it again.
package pool
