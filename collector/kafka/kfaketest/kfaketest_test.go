package kfaketest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMainFlags(t *testing.T) {
	for _, args := range [][]string{{"-ports", "x"}, {"-c", "novalue"}, {"-nope"}} {
		var stderr bytes.Buffer
		require.Equal(t, 2, Main(t.Context(), args, io.Discard, &stderr), args)
		require.NotEmpty(t, stderr.String())
	}
	_, err := Start(Options{Brokers: 2, Ports: []int{1}})
	require.ErrorContains(t, err, "2 brokers")
}

// TestMainPersistsAcrossRestart: a broker run by Main with a data directory
// keeps its topics and records when stopped and started again on the same
// port.
func TestMainPersistsAcrossRestart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"-data-dir", t.TempDir(), "-ports", strconv.Itoa(port), "-c", "message.max.bytes=2000000"}

	run := func(fn func()) {
		ctx, cancel := context.WithCancel(t.Context())
		stdout, w := io.Pipe()
		done := make(chan int, 1)
		go func() {
			done <- Main(ctx, args, w, io.Discard)
			_ = w.Close()
		}()
		defer func() {
			cancel()
			require.Equal(t, 0, <-done)
		}()
		// Main prints the address once the broker listens.
		line, err := bufio.NewReader(stdout).ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, addr, strings.TrimSpace(line))
		go func() { _, _ = io.Copy(io.Discard, stdout) }()
		fn()
	}
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	run(func() {
		c := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr}
		_, err := c.CreateTopics(t.Context(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: "t", NumPartitions: 1, ReplicationFactor: 1}}})
		require.NoError(t, err)
		w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: "t", BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll, Transport: tr}
		require.NoError(t, w.WriteMessages(t.Context(), kafka.Message{Value: []byte("kept")}))
		require.NoError(t, w.Close())
		tr.CloseIdleConnections()
	})
	run(func() {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: "t", Partition: 0, MaxWait: 100 * time.Millisecond})
		defer r.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		m, err := r.ReadMessage(ctx)
		require.NoError(t, err)
		require.Equal(t, "kept", string(m.Value))
	})
}
