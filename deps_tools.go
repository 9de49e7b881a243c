//go:build tools

// Package ballast pins the modules the project builds on before every package
// imports them, so go.mod and go.sum stay complete while parts are written.
package ballast

import (
	_ "github.com/alecthomas/kingpin/v2"
	_ "github.com/ceph/go-ceph/rados"
	_ "github.com/expr-lang/expr"
	_ "github.com/go-chi/chi/v5"
	_ "github.com/golang/snappy"
	_ "github.com/klauspost/compress/snappy"
	_ "github.com/prometheus/client_golang/api/prometheus/v1"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/prometheus/client_golang/prometheus/testutil"
	_ "github.com/prometheus/exporter-toolkit/web"
	_ "github.com/prometheus/procfs"
	_ "github.com/prometheus/prometheus/config"
	_ "github.com/prometheus/prometheus/discovery"
	_ "github.com/prometheus/prometheus/discovery/file"
	_ "github.com/prometheus/prometheus/prompb"
	_ "github.com/prometheus/prometheus/promql"
	_ "github.com/prometheus/prometheus/scrape"
	_ "github.com/prometheus/prometheus/storage/remote"
	_ "github.com/prometheus/prometheus/tsdb"
	_ "github.com/prometheus/prometheus/tsdb/agent"
	_ "github.com/prometheus/prometheus/web/api/v1"
	_ "github.com/segmentio/kafka-go"
	_ "github.com/stretchr/testify/require"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "go.uber.org/goleak"
	_ "go.yaml.in/yaml/v3"
	_ "libvirt.org/go/libvirt"
	_ "modernc.org/sqlite"
)
