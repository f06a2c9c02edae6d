package contenders

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/bench"
)

// TestFairnessThroughSharedBottleneck runs two tlsgram flows through the bench's shared
// bottleneck relay: both must deliver, their shares add up, and together they use the 50 Mbit/s
// link without exceeding it (the relay really is one bottleneck, not one per flow).
func TestFairnessThroughSharedBottleneck(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of real traffic")
	}
	c, ok := bench.Lookup("tlsgram")
	require.True(t, ok)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := bench.MeasureFairness(ctx, c, c, bench.FairnessCondition, 1, 3*time.Second, 500*time.Millisecond, 500*time.Millisecond)
	require.NoError(t, err)
	t.Logf("%+v", f)
	require.InDelta(t, 1, f.ShareA+f.ShareB, 1e-9)
	require.Greater(t, f.ShareA, 0.05)
	require.Greater(t, f.ShareB, 0.05)
	require.Greater(t, f.Utilisation, 0.5)
	require.Less(t, f.Utilisation, 1.05, "two flows share one 50 Mbit/s link")
}
