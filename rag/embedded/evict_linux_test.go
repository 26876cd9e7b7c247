package embedded

import (
	"os"

	"golang.org/x/sys/unix"
)

// evict drops path's pages from the page cache (posix_fadvise DONTNEED,
// this file only), so the next open reads it from disk. It reports
// whether it could.
func evict(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Sync() == nil && unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED) == nil
}
