package kafka

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the bus's own; the ingest metrics (appended, rejected by the
// TSDB) belong to collector/ingest.
type metrics struct {
	ready      prometheus.Gauge
	partitions *prometheus.GaugeVec // topic

	bufferBytes     prometheus.Gauge
	bufferRecords   prometheus.Gauge
	bufferLimit     prometheus.Gauge
	blockedSeconds  prometheus.Counter
	droppedSamples  *prometheus.CounterVec // reason
	droppedRecords  *prometheus.CounterVec // reason
	sentRecords     *prometheus.CounterVec // topic
	sentBytes       *prometheus.CounterVec // topic
	sentSamples     prometheus.Counter
	writeErrors     *prometheus.CounterVec // topic
	writeDuration   prometheus.Histogram
	publishedEvents prometheus.Counter

	consumedRecords *prometheus.CounterVec   // topic, group
	consumedSamples *prometheus.CounterVec   // group
	rejectedSamples *prometheus.CounterVec   // group, reason
	handlerRetries  *prometheus.CounterVec   // topic, group
	skippedEvents   *prometheus.CounterVec   // group, reason
	deadLetters     *prometheus.CounterVec   // topic, group, reason
	lag             *prometheus.GaugeVec     // topic, group, partition
	committedOffset *prometheus.GaugeVec     // topic, group, partition
	commitErrors    *prometheus.CounterVec   // topic, group
	generations     *prometheus.CounterVec   // topic, group
	groupErrors     *prometheus.CounterVec   // topic, group
	assigned        *prometheus.GaugeVec     // topic, group
	handleDuration  *prometheus.HistogramVec // topic
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns = "ballast_kafka"
	m := &metrics{
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "ready",
			Help: "1 when the brokers are reachable and the topics exist, else 0.",
		}),
		partitions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "topic_partitions",
			Help: "Partitions of each Ballast topic, as last read from the brokers.",
		}, []string{"topic"}),
		bufferBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "producer_buffer_bytes",
			Help: "Encoded sample records waiting to be sent or in flight.",
		}),
		bufferRecords: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "producer_buffer_records",
			Help: "Sample records waiting to be sent or in flight.",
		}),
		bufferLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "producer_buffer_limit_bytes",
			Help: "Bound on waiting sample records (producer.buffer_bytes).",
		}),
		blockedSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "producer_blocked_seconds_total",
			Help: "Time publishers spent waiting for buffer space.",
		}),
		droppedSamples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "producer_dropped_samples_total",
			Help: "Samples dropped before reaching Kafka, by reason (buffer_full, shutdown, too_large).",
		}, []string{"reason"}),
		droppedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "producer_dropped_records_total",
			Help: "Sample records dropped before reaching Kafka, by reason.",
		}, []string{"reason"}),
		sentRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "producer_records_total",
			Help: "Records acknowledged by the brokers, by topic.",
		}, []string{"topic"}),
		sentBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "producer_bytes_total",
			Help: "Record value bytes acknowledged by the brokers, by topic.",
		}, []string{"topic"}),
		sentSamples: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "producer_samples_total",
			Help: "Samples acknowledged by the brokers.",
		}),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "producer_write_errors_total",
			Help: "Failed produce rounds (each retried), by topic.",
		}, []string{"topic"}),
		writeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "producer_write_duration_seconds",
			Help:                        "Time to send one round of sample records, retries included.",
			Buckets:                     prometheus.ExponentialBuckets(0.0005, 4, 9),
			NativeHistogramBucketFactor: 1.1,
		}),
		publishedEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "producer_events_total",
			Help: "Events acknowledged by the brokers.",
		}),
		consumedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "consumer_records_total",
			Help: "Records handled (stored, skipped or dead-lettered), by topic and group.",
		}, []string{"topic", "group"}),
		consumedSamples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "consumer_samples_total",
			Help: "Samples handed to the sample handler and accepted, by group.",
		}, []string{"group"}),
		rejectedSamples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "consumer_rejected_samples_total",
			Help: "Samples refused while decoding or by the handler, by group and reason.",
		}, []string{"group", "reason"}),
		handlerRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "consumer_handler_retries_total",
			Help: "Transient handler failures, each retried with backoff, by topic and group.",
		}, []string{"topic", "group"}),
		skippedEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "consumer_skipped_events_total",
			Help: "Events not handed to the handler, by group and reason (type_filtered).",
		}, []string{"group", "reason"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "deadletter_records_total",
			Help: "Records sent to the dead-letter topic, by source topic, group and reason.",
		}, []string{"topic", "group", "reason"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "consumer_lag_records",
			Help: "Records in a partition not yet handled by this member of the group.",
		}, []string{"topic", "group", "partition"}),
		committedOffset: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "consumer_committed_offset",
			Help: "Last offset committed by this member, by partition.",
		}, []string{"topic", "group", "partition"}),
		commitErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "consumer_commit_errors_total",
			Help: "Failed offset commits (the records are redelivered, harmlessly).",
		}, []string{"topic", "group"}),
		generations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "consumer_generations_total",
			Help: "Group generations joined (each rebalance starts one).",
		}, []string{"topic", "group"}),
		groupErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "consumer_group_errors_total",
			Help: "Failures to join or sync the consumer group (retried).",
		}, []string{"topic", "group"}),
		assigned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "consumer_assigned_partitions",
			Help: "Partitions assigned to this member in the current generation.",
		}, []string{"topic", "group"}),
		handleDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "consumer_handle_duration_seconds",
			Help:                        "Time to decode and handle one record, retries excluded.",
			Buckets:                     prometheus.ExponentialBuckets(0.0001, 4, 9),
			NativeHistogramBucketFactor: 1.1,
		}, []string{"topic"}),
	}
	if reg != nil {
		reg.MustRegister(m.ready, m.partitions, m.bufferBytes, m.bufferRecords, m.bufferLimit, m.blockedSeconds,
			m.droppedSamples, m.droppedRecords, m.sentRecords, m.sentBytes, m.sentSamples, m.writeErrors,
			m.writeDuration, m.publishedEvents, m.consumedRecords, m.consumedSamples, m.rejectedSamples,
			m.handlerRetries, m.skippedEvents, m.deadLetters, m.lag, m.committedOffset, m.commitErrors,
			m.generations, m.groupErrors, m.assigned, m.handleDuration)
	}
	return m
}
