package embedded

import (
	"encoding/binary"
	"errors"
	"math"
)

// A point's bbolt key is documentID, NUL, chunk index as 4 big-endian
// bytes: a document's chunks are adjacent and in order, so deleting a
// document (or its chunks from n on) is one cursor seek.
func pointKey(documentID string, chunk int) []byte {
	k := make([]byte, len(documentID)+5)
	copy(k, documentID)
	binary.BigEndian.PutUint32(k[len(documentID)+1:], uint32(chunk))
	return k
}

func splitKey(k []byte) (documentID string, chunk int, ok bool) {
	if len(k) < 5 || k[len(k)-5] != 0 {
		return "", 0, false
	}
	return string(k[:len(k)-5]), int(binary.BigEndian.Uint32(k[len(k)-4:])), true
}

// A point's value: dim little-endian float32s, uvarint length of the
// metadata JSON, the metadata JSON, then the text.
func encodeRecord(vec []float32, metaJSON []byte, text string) []byte {
	b := make([]byte, 4*len(vec), 4*len(vec)+binary.MaxVarintLen64+len(metaJSON)+len(text))
	for i, f := range vec {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	b = binary.AppendUvarint(b, uint64(len(metaJSON)))
	b = append(b, metaJSON...)
	return append(b, text...)
}

var errCorrupt = errors.New("corrupt point record")

// decodeRecord appends the vector to dst; metaJSON and text alias b.
func decodeRecord(b []byte, dim int, dst []float32) (vec []float32, metaJSON, text []byte, err error) {
	if len(b) < 4*dim {
		return dst, nil, nil, errCorrupt
	}
	for i := 0; i < dim; i++ {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
	}
	metaJSON, text, err = decodeTail(b, dim)
	return dst, metaJSON, text, err
}

// decodeTail returns the metadata JSON and text of a record, skipping the
// vector.
func decodeTail(b []byte, dim int) (metaJSON, text []byte, err error) {
	if len(b) < 4*dim {
		return nil, nil, errCorrupt
	}
	rest := b[4*dim:]
	n, w := binary.Uvarint(rest)
	if w <= 0 || uint64(len(rest)-w) < n {
		return nil, nil, errCorrupt
	}
	rest = rest[w:]
	return rest[:n], rest[n:], nil
}
