package transport

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/session/congestion"
)

// TestCongestionNames: the names a flag offers come from package congestion, parse back to the
// matching Config value, and each Config value builds the controller of that name. The zero
// value is the default, BBR; a value out of range is refused by validate.
func TestCongestionNames(t *testing.T) {
	require.Equal(t, congestion.Names(), CongestionNames())
	for _, name := range CongestionNames() {
		c, err := ParseCongestion(name)
		require.NoError(t, err)
		require.Equal(t, name, c.String())
		conf := &Config{Congestion: c}
		require.NoError(t, conf.validate())
		want, _ := congestion.ByName(name)
		got := conf.sessionConfig().Congestion
		require.IsType(t, want(1200), got(1200), name)
	}
	var zero Config
	require.Equal(t, BBR, zero.Congestion)
	_, err := ParseCongestion("reno")
	require.ErrorContains(t, err, "bbr, cubic, newreno")
	require.Error(t, (&Config{Congestion: Congestion(7)}).validate())
	require.Equal(t, "Congestion(7)", Congestion(7).String())
}
