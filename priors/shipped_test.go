package priors

import (
	"math"
	"testing"
)

// shippedFloors are the minimum metrics for the shipped models (and the models
// that must ship).
var shippedFloors = map[string]struct {
	metric string
	floor  float64
}{
	"mnist-classifier":   {"test_accuracy", 0.985},
	"fashion-classifier": {"test_accuracy", 0.89},
	"mnist-vae":          {"test_elbo", -105},
}

// TestShippedModelsReproduceTheirMetrics loads every model of the embedded manifest
// (checking its SHA-256), evaluates it on its test set, and requires the recorded metrics
// back (evaluation is deterministic up to float rounding across adapters) and the floors
// above.
func TestShippedModelsReproduceTheirMetrics(t *testing.T) {
	l := testLib(t)
	man, err := ShippedManifest()
	if err != nil {
		t.Fatal(err)
	}
	for name := range shippedFloors {
		if _, err := man.Find(name); err != nil {
			t.Errorf("required model missing: %v", err)
		}
	}
	tests := map[string]*Dataset{}
	for _, e := range man.Models {
		t.Run(e.Name, func(t *testing.T) {
			m, entry, err := LoadShipped(l.Device(), e.Name)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Release()
			if m.Kind() != entry.Kind {
				t.Fatalf("file holds a %s, manifest says %s", m.Kind(), entry.Kind)
			}
			test := tests[e.Dataset]
			if test == nil {
				if test, err = LoadDataset(e.Dataset, "test"); err != nil {
					t.Fatal(err)
				}
				tests[e.Dataset] = test
			}
			k, err := LookupKind(m.Kind())
			if err != nil {
				t.Fatal(err)
			}
			got, err := k.Eval(l, m, test)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: measured %v, recorded %v", e.Name, got, e.Metrics)
			for key, v := range got {
				rec, ok := e.Metrics[key]
				if !ok {
					t.Errorf("metric %s = %v is not recorded in the manifest", key, v)
					continue
				}
				// Accuracies may move by a few images of 10,000, ELBO and Fréchet
				// distances by float rounding of long sums.
				tol := 3e-4
				if key != "test_accuracy" {
					tol = 2e-3 * math.Max(1, math.Abs(rec))
				}
				if math.Abs(v-rec) > tol {
					t.Errorf("%s = %v, manifest records %v (tolerance %v)", key, v, rec, tol)
				}
			}
			if f, ok := shippedFloors[e.Name]; ok && !(got[f.metric] >= f.floor) {
				t.Errorf("%s = %v, want ≥ %v", f.metric, got[f.metric], f.floor)
			}
		})
	}
}
