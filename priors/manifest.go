package priors

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"osds/gpu"
	"osds/nn"
)

// shipped holds the priors and classifiers trained by osds itself (priors/weights), so
// the demo and the tests need no training.
//
//go:embed weights
var shipped embed.FS

// ManifestName is the manifest's file name inside a weights folder.
const ManifestName = "manifest.json"

// Entry describes one model file of a weights folder.
type Entry struct {
	// Name is the model's handle (e.g. "mnist-vae"); File is relative to the folder.
	Name, Kind, Dataset, File string
	// SHA256 is the hex digest of File; loading checks it.
	SHA256 string
	// Arch is the architecture JSON (the same as the file's osds.arch metadata).
	Arch json.RawMessage
	// Params counts the scalars.
	Params int
	// Metrics are the values measured after training (e.g. "test_elbo",
	// "test_accuracy"); tests reproduce them.
	Metrics map[string]float64
	// Command is how the file was made.
	Command string
}

// Manifest lists the models of a weights folder.
type Manifest struct {
	Models []Entry
}

// Find returns the entry called name.
func (m *Manifest) Find(name string) (*Entry, error) {
	var names []string
	for i := range m.Models {
		if m.Models[i].Name == name {
			return &m.Models[i], nil
		}
		names = append(names, m.Models[i].Name)
	}
	return nil, fmt.Errorf("priors: no model %q in the manifest (have %v)", name, names)
}

// Put adds e, replacing an entry of the same name, and keeps the list sorted.
func (m *Manifest) Put(e Entry) {
	for i := range m.Models {
		if m.Models[i].Name == e.Name {
			m.Models[i] = e
			return
		}
	}
	m.Models = append(m.Models, e)
	sort.Slice(m.Models, func(i, j int) bool { return m.Models[i].Name < m.Models[j].Name })
}

func parseManifest(data []byte, where string) (*Manifest, error) {
	var m Manifest
	if err := strictJSON(data, &m); err != nil {
		return nil, fmt.Errorf("priors: manifest %s: %w", where, err)
	}
	return &m, nil
}

// ShippedManifest is the manifest of the embedded weights.
func ShippedManifest() (*Manifest, error) {
	data, err := shipped.ReadFile("weights/" + ManifestName)
	if err != nil {
		return nil, fmt.Errorf("priors: the binary holds no weights manifest: %w", err)
	}
	return parseManifest(data, "(shipped)")
}

// ReadManifest reads dir/manifest.json; a missing file is an empty manifest.
func ReadManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return &Manifest{}, nil
	}
	if err != nil {
		return nil, err
	}
	return parseManifest(data, filepath.Join(dir, ManifestName))
}

// WriteManifest writes m to dir/manifest.json atomically.
func WriteManifest(dir string, m *Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return nn.WriteFileAtomic(filepath.Join(dir, ManifestName), append(data, '\n'))
}

// SHA256Hex is the hex SHA-256 of data.
func SHA256Hex(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// LoadShipped loads the embedded model called name after checking its digest.
func LoadShipped(d *gpu.Device, name string) (Model, *Entry, error) {
	m, err := ShippedManifest()
	if err != nil {
		return nil, nil, err
	}
	e, err := m.Find(name)
	if err != nil {
		return nil, nil, err
	}
	data, err := shipped.ReadFile("weights/" + e.File)
	if err != nil {
		return nil, nil, fmt.Errorf("priors: shipped model %s: %w", name, err)
	}
	if got := SHA256Hex(data); got != e.SHA256 {
		return nil, nil, fmt.Errorf("priors: shipped model %s: %s has SHA-256 %s, the manifest says %s", name, e.File, got, e.SHA256)
	}
	ts, md, err := nn.ParseSafetensors(data)
	if err != nil {
		return nil, nil, fmt.Errorf("priors: shipped model %s: %w", name, err)
	}
	model, err := modelFromTensors(d, ts, md)
	if err != nil {
		return nil, nil, fmt.Errorf("priors: shipped model %s: %w", name, err)
	}
	return model, e, nil
}

// LoadNamedOrFile loads a shipped model by name, a model file when ref names an existing
// path, or an imported generator when ref is PATH.onnx[,options] (ParseONNXRef).
func LoadNamedOrFile(d *gpu.Device, ref string) (Model, map[string]string, error) {
	if IsONNXRef(ref) {
		p, err := LoadONNXPrior(d, ref)
		if err != nil {
			return nil, nil, err
		}
		return p, map[string]string{MetaKind: p.Kind(), MetaDataset: p.Dataset()}, nil
	}
	if _, err := os.Stat(ref); err == nil {
		return LoadModel(d, ref)
	}
	m, e, err := LoadShipped(d, ref)
	if err != nil {
		return nil, nil, err
	}
	return m, map[string]string{MetaKind: e.Kind, MetaDataset: e.Dataset}, nil
}

// UpdateManifest applies change to dir/manifest.json under an exclusive lock on
// dir/.manifest.lock, so that training runs finishing at the same time do not lose each
// other's entries.
func UpdateManifest(dir string, change func(*Manifest) error) error {
	unlock, err := lockFile(filepath.Join(dir, ".manifest.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	m, err := ReadManifest(dir)
	if err != nil {
		return err
	}
	if err := change(m); err != nil {
		return err
	}
	return WriteManifest(dir, m)
}
