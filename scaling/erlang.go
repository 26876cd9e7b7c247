package scaling

import "math"

// ErlangC is the probability that an arrival has to wait in an M/M/c queue
// with c servers and an offered load of a erlangs (arrival rate × mean
// service time). It is 1 when a >= c (the queue grows without bound) and 0
// when a <= 0.
func ErlangC(c int, a float64) float64 {
	switch {
	case a <= 0 || math.IsNaN(a):
		return 0
	case c <= 0 || a >= float64(c):
		return 1
	}
	// Erlang B by its stable recursion, then C from B.
	b := 1.0
	for k := 1; k <= c; k++ {
		b = a * b / (float64(k) + a*b)
	}
	return float64(c) * b / (float64(c) - a*(1-b))
}

// WaitTail is P(wait > t) in an M/M/c queue: c servers, offered load a
// erlangs, mean service time s, i.e. ErlangC(c, a) × exp(−(c − a)·t/s).
// It is 1 when a >= c.
func WaitTail(c int, a, s, t float64) float64 {
	pc := ErlangC(c, a)
	if pc >= 1 || pc <= 0 {
		return pc
	}
	if s <= 0 {
		return 0
	}
	return pc * math.Exp(-(float64(c)-a)*t/s)
}

// SlotsFor is the fewest servers c with which an M/M/c queue of offered
// load a erlangs and mean service time s keeps P(wait > t) at most eps. It
// returns at most limit (limit when no c up to it suffices).
func SlotsFor(a, s, t, eps float64, limit int) int {
	c := max(1, int(math.Floor(a))) // below a the queue is unstable
	for ; c < limit; c++ {
		if WaitTail(c, a, s, t) <= eps {
			return c
		}
	}
	return limit
}
