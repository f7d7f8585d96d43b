package metricset

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestRegisterUnregister(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := prometheus.NewCounter(prometheus.CounterOpts{Name: "a_total"})
	b := prometheus.NewCounter(prometheus.CounterOpts{Name: "b_total"})
	s, err := Register(reg, "x", a, b)
	require.NoError(t, err)

	_, err = Register(reg, "x", prometheus.NewCounter(prometheus.CounterOpts{Name: "c_total"}), prometheus.NewCounter(prometheus.CounterOpts{Name: "a_total"}))
	require.ErrorContains(t, err, "x: metrics already registered")
	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, mfs, 2, "a failed Register leaves nothing behind (c_total rolled back)")

	s.Unregister()
	s.Unregister()
	_, err = Register(reg, "x", a, b)
	require.NoError(t, err, "registrable again after Unregister")

	none, err := Register(nil, "x", a)
	require.NoError(t, err)
	none.Unregister()
}
