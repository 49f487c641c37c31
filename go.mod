module osds

go 1.26

require (
	github.com/go-gl/glfw/v3.3/glfw v0.0.0-20260823155953-d41da22a9587
	github.com/spf13/pflag v1.1.0
	gonum.org/v1/gonum v0.17.0
	google.golang.org/protobuf v1.36.12
)
