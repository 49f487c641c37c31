//go:build !unix

package priors

// lockFile is a no-op where flock is unavailable: concurrent manifest updates are then
// the user's to avoid.
func lockFile(path string) (func(), error) { return func() {}, nil }
