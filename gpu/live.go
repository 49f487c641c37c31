package gpu

import "sync"

// live counts the webgpu.h handles this package holds, per kind, so tests can check that
// create/release cycles leak nothing on our side.
var live struct {
	sync.Mutex
	n map[string]int64
}

func track(kind string, delta int64) {
	live.Lock()
	if live.n == nil {
		live.n = map[string]int64{}
	}
	live.n[kind] += delta
	live.Unlock()
}

// LiveObjects returns the number of handles created and not yet released, in total and
// per kind ("buffer", "bindgroup", ...).
func LiveObjects() (total int64, byKind map[string]int64) {
	live.Lock()
	defer live.Unlock()
	byKind = map[string]int64{}
	for k, v := range live.n {
		if v != 0 {
			byKind[k] = v
			total += v
		}
	}
	return total, byKind
}
