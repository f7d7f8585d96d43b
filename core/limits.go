package core

import "fmt"

// checkStreamLimitLocked refuses to create stream id when the store already
// holds Config.MaxStreams streams. Streams that failed recovery count: their
// directories and ids are the store's all the same. Called with st.mu held,
// before anything of the new stream exists.
func (st *Store) checkStreamLimitLocked(id StreamID) error {
	limit := st.cfg.MaxStreams
	if limit <= 0 {
		return nil
	}
	if n := len(st.mu.streams) + len(st.mu.broken); n >= limit {
		return fmt.Errorf("create stream %d: the store holds %d streams, its limit: %w", id, n, ErrTooManyStreams)
	}
	return nil
}
