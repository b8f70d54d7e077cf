package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/strata-cqrs/strata/internal/kafka"
)

// keyMetadata carries the partition key from the marshaler to the Kafka
// publisher; it also reaches Kafka as a header.
const keyMetadata = "strata-aggregate-id"

// BusConfig configures the gateway's command bus.
type BusConfig struct {
	Brokers []string
	Key     Key
	Logger  *slog.Logger
}

// Bus sends signed command envelopes to "<service>.commands", keyed by
// aggregate id so one aggregate's commands stay ordered, with acks=all and
// an idempotent producer. It is a watermill cqrs.CommandBus over the
// watermill-kafka publisher.
type Bus struct {
	bus       *cqrs.CommandBus
	publisher message.Publisher
}

// NewBus connects a bus.
func NewBus(cfg BusConfig) (*Bus, error) {
	if len(cfg.Brokers) == 0 || len(cfg.Key) < MinKeyBytes {
		return nil, errors.New("bus: Brokers and a Key of at least 32 bytes are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	sc := wkafka.DefaultSaramaSyncPublisherConfig()
	sc.Version = sarama.V2_8_0_0
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Retry.Max = 5
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	// In memory to an embedded broker of this process, TCP otherwise.
	sc.Net.Proxy.Enable = true
	sc.Net.Proxy.Dialer = kafka.Dialer{Timeout: sc.Net.DialTimeout}
	logger := watermill.NewSlogLogger(cfg.Logger.With("component", "bus"))
	pub, err := wkafka.NewPublisher(wkafka.PublisherConfig{
		Brokers: cfg.Brokers,
		Marshaler: wkafka.NewWithPartitioningMarshaler(func(_ string, m *message.Message) (string, error) {
			return m.Metadata.Get(keyMetadata), nil
		}),
		OverwriteSaramaConfig: sc,
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	bus, err := cqrs.NewCommandBusWithConfig(pub, cqrs.CommandBusConfig{
		GeneratePublishTopic: func(p cqrs.CommandBusGeneratePublishTopicParams) (string, error) {
			return CommandTopic(p.Command.(*Envelope).Service()), nil
		},
		Marshaler: envelopeMarshaler{key: cfg.Key},
		Logger:    logger,
	})
	if err != nil {
		_ = pub.Close()
		return nil, fmt.Errorf("bus: %w", err)
	}
	return &Bus{bus: bus, publisher: pub}, nil
}

// Send signs and produces one envelope, returning once Kafka acknowledged
// it on all in-sync replicas.
func (b *Bus) Send(ctx context.Context, env *Envelope) error {
	return b.bus.Send(ctx, env)
}

// Close flushes and closes the producer.
func (b *Bus) Close() error { return b.publisher.Close() }

// envelopeMarshaler turns an *Envelope into a watermill message whose
// payload is the envelope JSON and whose metadata carries the signature.
type envelopeMarshaler struct{ key Key }

var _ cqrs.CommandEventMarshaler = envelopeMarshaler{}

func (m envelopeMarshaler) Marshal(v any) (*message.Message, error) {
	env, ok := v.(*Envelope)
	if !ok {
		return nil, fmt.Errorf("bus: can only send *Envelope, got %T", v)
	}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	msg := message.NewMessage(env.ID, b)
	msg.Metadata.Set(SignatureHeader, m.key.Sign(b))
	msg.Metadata.Set(keyMetadata, env.AggregateID)
	return msg, nil
}

func (m envelopeMarshaler) Unmarshal(msg *message.Message, v any) error {
	env, ok := v.(*Envelope)
	if !ok {
		return fmt.Errorf("bus: can only decode into *Envelope, got %T", v)
	}
	if !m.key.Verify(msg.Payload, msg.Metadata.Get(SignatureHeader)) {
		return errors.New("bus: bad command signature")
	}
	return decodeStrict(msg.Payload, env)
}

func (envelopeMarshaler) Name(v any) string {
	if env, ok := v.(*Envelope); ok {
		return env.Type
	}
	return fmt.Sprintf("%T", v)
}

func (m envelopeMarshaler) NameFromMessage(msg *message.Message) string {
	var env struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(msg.Payload, &env)
	return env.Type
}
