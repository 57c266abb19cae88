package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "listen", 6},
		{"listen", "listen", 0},
		{"listn", "listen", 1},   // a letter left out
		{"listenn", "listen", 1}, // one too many
		{"lisben", "listen", 1},  // one wrong
		{"lsiten", "listen", 1},  // neighbours swapped
		{"maxattemps", "maxattempts", 1},
		{"kitten", "sitting", 3},
		{"title", "name", 4},
		{"ca", "abc", 3},      // optimal string alignment: a swapped pair is not edited again
		{"héllo", "hello", 1}, // runes, not bytes
	} {
		assert.Equal(t, tt.want, editDistance(tt.a, tt.b), "%q %q", tt.a, tt.b)
		assert.Equal(t, tt.want, editDistance(tt.b, tt.a), "%q %q", tt.b, tt.a)
	}
}
