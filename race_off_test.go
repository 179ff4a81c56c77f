//go:build !race

package wsroom

const raceEnabled = false
