package tier2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aof2/aof2/pluginapi"
)

// The store descriptor (docs/adr-fencing.md): one small object under the
// prefix, created once with if_absent and never replaced, that says the
// prefix is an AOF2 store, which one (a random id), and in which formats
// it is written. A node records the id of the store it writes to, so that
// a prefix emptied, swapped or shared by mistake is an error naming what
// happened, not objects uploaded into someone else's store.

// DescriptorKey is the descriptor's key under the prefix.
const DescriptorKey = "_aof2/store.json"

// DescriptorFormat and DescriptorVersion name this descriptor format;
// LayoutVersion is the tier-2 key layout (formats.md#tier-2-keys-and-object-metadata).
const (
	DescriptorFormat  = "aof2-store"
	DescriptorVersion = 1
	LayoutVersion     = 1
)

// Descriptor is the store descriptor.
type Descriptor struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// StoreID is random, made when the descriptor is created.
	StoreID string `json:"store_id"`
	// Layout, SegmentFormat and ManifestFormat are the versions the
	// store's objects are written in.
	Layout         int `json:"layout"`
	SegmentFormat  int `json:"segment_format"`
	ManifestFormat int `json:"manifest_format"`
	// CreatedAt and CreatedBy are for people (nothing trusts a clock).
	CreatedAt string `json:"created_at"`
	CreatedBy string `json:"created_by"`
}

// ErrIncompatibleStore: the prefix holds a store in a format or version
// this build does not write.
var ErrIncompatibleStore = errors.New("tier2: the prefix holds a store of another format or version")

// Check says whether this build can write to the store d describes.
func (d Descriptor) Check() error {
	switch {
	case d.Format != DescriptorFormat:
		return fmt.Errorf("%w: descriptor format %q, want %q", ErrIncompatibleStore, d.Format, DescriptorFormat)
	case d.Version != DescriptorVersion || d.Layout != LayoutVersion:
		return fmt.Errorf("%w: descriptor version %d, layout %d; this build writes version %d, layout %d",
			ErrIncompatibleStore, d.Version, d.Layout, DescriptorVersion, LayoutVersion)
	case d.StoreID == "":
		return fmt.Errorf("%w: the descriptor names no store id", ErrIncompatibleStore)
	}
	return nil
}

func (s *Store) descriptorKey() string { return s.layout.prefix + DescriptorKey }

// ReadDescriptor reads the store descriptor; an error matching
// pluginapi.ErrNotFound when the prefix has none, ErrIncompatibleStore
// when it does not decode.
func (s *Store) ReadDescriptor(ctx context.Context) (Descriptor, error) {
	// A Head first: a prefix without a descriptor (the first start) is
	// not a failed fetch worth a warning.
	if _, err := s.Stat(ctx, s.descriptorKey()); err != nil {
		return Descriptor{}, err
	}
	data, _, err := s.Fetch(ctx, s.descriptorKey(), Expect{})
	if err != nil {
		return Descriptor{}, err
	}
	d, err := decodeDescriptor(data)
	if err != nil {
		return Descriptor{}, fmt.Errorf("%w: %s does not decode: %v", ErrIncompatibleStore, s.descriptorKey(), err)
	}
	return d, nil
}

// decodeDescriptor decodes a descriptor object's bytes.
func decodeDescriptor(data []byte) (Descriptor, error) {
	var d Descriptor
	if err := json.Unmarshal(data, &d); err != nil {
		return Descriptor{}, err
	}
	return d, nil
}

// CreateDescriptor creates the store descriptor d if the prefix has none
// (if_absent) and returns the one the prefix holds: d, or the one another
// node created first.
func (s *Store) CreateDescriptor(ctx context.Context, d Descriptor) (Descriptor, error) {
	if got, err := s.ReadDescriptor(ctx); !errors.Is(err, pluginapi.ErrNotFound) {
		return got, err
	}
	data, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return Descriptor{}, err
	}
	_, err = s.Put(ctx, Upload{Key: s.descriptorKey(), Data: append(data, '\n')})
	if errors.Is(err, ErrDataLoss) {
		return s.ReadDescriptor(ctx) // created first by another node: theirs holds
	}
	if err != nil {
		return Descriptor{}, err
	}
	return d, nil
}
