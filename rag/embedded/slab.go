package embedded

// slab is a growable array of fixed-width rows kept in chunks of about
// chunkBytes, so that growing never moves what is there. One slice
// doubling at a million 384-d vectors copied and cleared 1.2 GB in a
// single Upsert (8 s, holding the collection's write lock); a new chunk is
// one fresh allocation of 16 MiB.
type slab[T float32 | uint8] struct {
	width  int // elements per row
	per    int // rows per chunk, a multiple of blockRows
	chunks [][]T
	n      int
}

// chunkBytes is a chunk's size (a variable so tests can cross chunks
// with small collections).
var chunkBytes = 16 << 20

// firstChunkRows is the first chunk's starting capacity: it grows like a
// slice up to per rows, so a small collection holds little.
const firstChunkRows = 64

// newSlab returns an empty slab of rows of width elements of elemBytes.
func newSlab[T float32 | uint8](width, elemBytes int) slab[T] {
	per := max(blockRows, chunkBytes/(width*elemBytes)/blockRows*blockRows)
	return slab[T]{width: width, per: per}
}

// row returns row i, aliasing the slab.
func (s *slab[T]) row(i int) []T {
	o := i % s.per * s.width
	return s.chunks[i/s.per][o : o+s.width : o+s.width]
}

// rows returns rows [i, j) as one slice; j must not pass chunkEnd(i).
func (s *slab[T]) rows(i, j int) []T {
	o := i % s.per * s.width
	return s.chunks[i/s.per][o : o+(j-i)*s.width : o+(j-i)*s.width]
}

// chunkEnd is the first row after the chunk that holds row i.
func (s *slab[T]) chunkEnd(i int) int { return (i/s.per + 1) * s.per }

// push appends a row and returns it; its contents are undefined (a
// popped row's), the caller writes all of it.
func (s *slab[T]) push() []T {
	ci := s.n / s.per
	if ci == len(s.chunks) {
		rows := s.per
		if ci == 0 {
			rows = min(s.per, firstChunkRows)
		}
		s.chunks = append(s.chunks, make([]T, 0, rows*s.width))
	}
	c := &s.chunks[ci]
	if len(*c) == cap(*c) { // the first chunk, below full size
		grown := make([]T, len(*c), min(2*cap(*c), s.per*s.width))
		copy(grown, *c)
		*c = grown
	}
	*c = (*c)[:len(*c)+s.width]
	s.n++
	return (*c)[len(*c)-s.width:]
}

// pop drops the last row. One emptied chunk is kept as a spare, so
// deleting and adding around a chunk boundary does not allocate each
// time; more are released.
func (s *slab[T]) pop() {
	s.n--
	ci := s.n / s.per
	s.chunks[ci] = s.chunks[ci][:len(s.chunks[ci])-s.width]
	need := (s.n + s.per - 1) / s.per
	for len(s.chunks) > need+1 {
		s.chunks[len(s.chunks)-1] = nil
		s.chunks = s.chunks[:len(s.chunks)-1]
	}
}
