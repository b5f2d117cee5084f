//go:build race

package auth

// raceEnabled: the race detector slows yescrypt's memory-hard loops about
// thirtyfold, so tests keep its costliest vectors for runs without it.
const raceEnabled = true
