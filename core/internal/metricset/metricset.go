// Package metricset registers a component's Prometheus collectors as one
// unit and unregisters them when the component closes, so a component can
// be closed and opened again against the same registry. It exists because
// the tier packages each own a group of collectors with that lifecycle.
package metricset

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Set is a group of registered collectors. The zero Set (no registerer)
// registers nothing.
type Set struct {
	reg        prometheus.Registerer
	registered []prometheus.Collector
}

// Register registers every collector with reg (nil: none), all or nothing.
// owner names the component in errors ("tier0", "tier1"): a collector
// already registered means a second live instance on the same registry.
func Register(reg prometheus.Registerer, owner string, cs ...prometheus.Collector) (*Set, error) {
	s := &Set{reg: reg}
	if reg == nil {
		return s, nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			s.Unregister()
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("%s: metrics already registered (one instance per registry): %w", owner, err)
			}
			return nil, fmt.Errorf("%s: register metrics: %w", owner, err)
		}
		s.registered = append(s.registered, c)
	}
	return s, nil
}

// Unregister removes the collectors; calling it again does nothing.
func (s *Set) Unregister() {
	if s == nil || s.reg == nil {
		return
	}
	for _, c := range s.registered {
		s.reg.Unregister(c)
	}
	s.registered = nil
}
