package coordinator

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrNoUploads is SetUploadsPaused's answer on a coordinator that uploads
// nothing: no tier 2, or a read replica.
var ErrNoUploads = errors.New("coordinator: this node uploads no segments (no tier 2, or a read replica)")

// SetUploadsPaused holds segment uploads back (true) or lets them go on
// (false), as an operator does around tier-2 maintenance or an incident.
// An upload already running finishes; nothing else is affected: manifest
// chunks, snapshots and segment-id reservations still go to tier 2, so
// writers keep their admission. Under the tier2 eviction policy nothing
// leaves tier 0 meanwhile, so a long pause fills it and writers then wait
// (WouldBlock(Admission)) as when tier 2 is down. Not persistent: a restart
// uploads again.
func (c *Coordinator) SetUploadsPaused(paused bool) error {
	if c.remote == nil || c.cfg.Replica {
		return ErrNoUploads
	}
	if c.uploadsPaused.Swap(paused) == paused {
		return nil
	}
	v := 0.0
	if paused {
		v = 1
		c.log.Warn("segment uploads paused by an operator: tier 0 keeps every sealed segment until they resume")
	} else {
		c.log.Info("segment uploads resumed")
	}
	c.m.uploadsPaused.Set(v)
	return nil
}

// UploadsPaused reports whether segment uploads are held back.
func (c *Coordinator) UploadsPaused() bool { return c.uploadsPaused.Load() }

func newUploadsPausedGauge() prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: "aof_tier2_uploads_paused",
		Help: "1 while an operator holds segment uploads back (aof2-host uploads pause), else 0."})
}
