package impair

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	good := []Config{
		{},
		everything(1),
		{Loss: 1, Reorder: 1, Duplicate: 1, Corrupt: 1},
		{Rate: 1, QueueBytes: 1, QueueDelay: 1},
		{Burst: GilbertElliott{Enter: 1, MeanLen: 1, BadLoss: 1}},
	}
	for _, c := range good {
		require.NoError(t, c.Validate(), "%+v", c)
	}
	bad := []struct {
		cfg  Config
		want string
	}{
		{Config{Loss: -0.1}, "Loss -0.1 out of range [0,1]"},
		{Config{Loss: 1.5}, "Loss 1.5 out of range"},
		{Config{Loss: math.NaN()}, "Loss NaN"},
		{Config{Reorder: 2}, "Reorder 2"},
		{Config{Duplicate: -1}, "Duplicate -1"},
		{Config{Corrupt: 1.01}, "Corrupt 1.01"},
		{Config{Burst: GilbertElliott{Enter: 0.1, MeanLen: 0.5, BadLoss: 1}}, "Burst.MeanLen 0.5"},
		{Config{Burst: GilbertElliott{Enter: 0.1, MeanLen: math.Inf(1), BadLoss: 1}}, "Burst.MeanLen +Inf"},
		{Config{Burst: GilbertElliott{Enter: 0.1, MeanLen: 3}}, "Burst.BadLoss is 0"},
		{Config{Burst: GilbertElliott{MeanLen: 3, BadLoss: 1}}, "Burst.Enter is 0"},
		{Config{Burst: GilbertElliott{Enter: 1.5, MeanLen: 3, BadLoss: 1}}, "Burst.Enter 1.5"},
		{Config{Delay: -1}, "Delay -1ns is negative"},
		{Config{Jitter: -time.Millisecond}, "Jitter -1ms"},
		{Config{ReorderDelay: -1}, "ReorderDelay"},
		{Config{Rate: -5}, "Rate -5 is negative"},
		{Config{Rate: 1, QueueBytes: -1}, "QueueBytes -1"},
		{Config{Rate: 1, QueueDelay: -1}, "QueueDelay -1ns"},
		{Config{QueueBytes: 1000}, "need Rate"},
		{Config{Limit: -1}, "Limit -1"},
		{Config{Blackouts: []Blackout{{Start: -1, Duration: 1}}}, "Blackouts[0]"},
		{Config{Blackouts: []Blackout{{Start: 0, Duration: time.Second}, {Start: 1, Duration: 0}}}, "Blackouts[1]"},
	}
	for _, tc := range bad {
		err := tc.cfg.Validate()
		require.Error(t, err, "%+v", tc.cfg)
		require.Contains(t, err.Error(), tc.want)
		require.True(t, strings.HasPrefix(err.Error(), "impair: invalid config: "), err.Error())
	}
	// All problems at once.
	err := Config{Loss: 2, Delay: -1}.Validate()
	require.ErrorContains(t, err, "Loss 2")
	require.ErrorContains(t, err, "Delay -1ns")
}

func TestGilbertLoss(t *testing.T) {
	g, err := GilbertLoss(0.05, 4)
	require.NoError(t, err)
	require.Equal(t, 4.0, g.MeanLen)
	require.Equal(t, 1.0, g.BadLoss)
	require.InDelta(t, 0.05, g.Enter/(g.Enter+1/g.MeanLen), 1e-12)
	require.NoError(t, Config{Burst: g}.Validate())

	g, err = GilbertLoss(0, 4)
	require.NoError(t, err)
	require.False(t, g.Enabled())

	for _, tc := range []struct{ avg, n float64 }{{-0.1, 2}, {1, 2}, {0.1, 0.5}, {0.1, math.NaN()}, {0.9, 1}} {
		_, err := GilbertLoss(tc.avg, tc.n)
		require.Error(t, err, "%v", tc)
	}
}

func TestParseRate(t *testing.T) {
	good := map[string]int64{
		"":         0,
		"0":        0,
		"50mbit":   50_000_000,
		"50Mbit":   50_000_000,
		"1.5gbit":  1_500_000_000,
		"800kbit":  800_000,
		"64k":      64_000,
		"2m":       2_000_000,
		"1g":       1_000_000_000,
		"1tbit":    1_000_000_000_000,
		"1000000":  1_000_000,
		"123bit":   123,
		" 10 mbit": 10_000_000,
		"1kibit":   1024,
		"2mibit":   2 << 20,
	}
	for in, want := range good {
		got, err := ParseRate(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for in, want := range map[string]string{
		"50mbps":          "ambiguous unit",
		"10bps":           "ambiguous unit",
		"5furlongs":       "unknown unit",
		"mbit":            "not a number",
		"1.2.3mbit":       "not a number",
		"-5mbit":          "negative",
		"0.1bit":          "below 1 bit",
		"99999999999tbit": "too large",
	} {
		_, err := ParseRate(in)
		require.ErrorContains(t, err, want, in)
	}
}

func TestFormatRateRoundTrips(t *testing.T) {
	for _, bps := range []int64{1, 999, 1000, 64_000, 1_500_000, 50_000_000, 1_000_000_000, 2_500_000_000_000, 123_456_789} {
		s := FormatRate(bps)
		got, err := ParseRate(s)
		require.NoError(t, err, s)
		require.Equal(t, bps, got, s)
	}
	require.Equal(t, "50mbit", FormatRate(50_000_000))
	require.Equal(t, "1.5gbit", FormatRate(1_500_000_000))
	require.Equal(t, "unlimited", FormatRate(0))
}

func TestParseBlackouts(t *testing.T) {
	got, err := ParseBlackouts("2s+500ms, 10s+1s")
	require.NoError(t, err)
	require.Equal(t, []Blackout{{2 * time.Second, 500 * time.Millisecond}, {10 * time.Second, time.Second}}, got)
	got, err = ParseBlackouts("")
	require.NoError(t, err)
	require.Nil(t, got)
	for _, in := range []string{"2s", "x+1s", "1s+y", "1s+0s", "-1s+1s"} {
		_, err := ParseBlackouts(in)
		require.Error(t, err, in)
	}
	require.Equal(t, "2s+500ms", Blackout{2 * time.Second, 500 * time.Millisecond}.String())
}

func TestConfigString(t *testing.T) {
	require.Equal(t, "none", Config{}.String())
	require.Equal(t, "none", Config{Seed: 5, Limit: 10}.String())
	require.Equal(t, "loss=1% delay=20ms jitter=5ms rate=50mbit queue=100ms seed=7",
		Config{Loss: 0.01, Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Rate: 50_000_000, Seed: 7}.String())
	g, err := GilbertLoss(0.02, 4)
	require.NoError(t, err)
	s := Config{Burst: g, Reorder: 0.05, ReorderDelay: time.Millisecond, Duplicate: 0.001, Corrupt: 0.5,
		Rate: 1000, QueueBytes: 3000, Blackouts: []Blackout{{time.Second, time.Second}}}.String()
	require.Equal(t, "burst=gilbert(avg=2%,len=4,enter=0.5102%,bad=100%) reorder=5% reorder-delay=1ms dup=0.1% corrupt=50% rate=1kbit queue=3000B blackout=1s+1s seed=0", s)
}

func TestPassthrough(t *testing.T) {
	require.True(t, Config{Seed: 3, Limit: 5}.Passthrough())
	require.False(t, Config{Jitter: 1}.Passthrough())
	require.False(t, Config{Blackouts: []Blackout{{0, 1}}}.Passthrough())
}

func TestDeriveSeed(t *testing.T) {
	seen := map[int64]bool{}
	for base := int64(0); base < 10; base++ {
		for i := uint64(0); i < 100; i++ {
			s := DeriveSeed(base, i)
			require.False(t, seen[s], "collision at base %d, i %d", base, i)
			seen[s] = true
		}
	}
	require.Equal(t, DeriveSeed(5, 3), DeriveSeed(5, 3))
}

func TestTCPApplicable(t *testing.T) {
	ok, why := TCPApplicable(Config{Delay: time.Millisecond, Jitter: 1, Rate: 5, QueueBytes: 100, Seed: 1, Limit: 3})
	require.True(t, ok)
	require.Empty(t, why)
	ok, why = TCPApplicable(everything(1))
	require.False(t, ok)
	require.Equal(t, "loss, burst loss, reorder, duplicate, corrupt, blackouts: not applicable to a TCP byte stream", why)
	ok, _ = TCPApplicable(TCPSubset(everything(1)))
	require.True(t, ok)
	sub := TCPSubset(everything(1))
	require.Equal(t, 20*time.Millisecond, sub.Delay)
	require.Equal(t, int64(20_000_000), sub.Rate)
}
