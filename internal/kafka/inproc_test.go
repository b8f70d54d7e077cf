package kafka_test

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-cqrs/strata/internal/kafka"
)

// The platform's clients reach an embedded broker of their own process in
// memory, while a client of another process (kcat, franz-go here, with its
// own TCP dialer) still reaches it over TCP, and both see the same records.
func TestInProcessConnections(t *testing.T) {
	const topic = "auth.role"
	b, ctx := topicWith(t, topic, 1, kafkago.Message{Key: []byte("k"), Value: []byte("from kafka-go")})
	brokers := []string{b.Addr()}
	r := kafka.NewReader(kafka.ReaderOptions{Brokers: brokers, GroupID: "g", Topics: []string{topic}, Logger: testLogger(t)})
	defer r.Close()
	m, err := r.FetchMessage(ctx)
	if err != nil || string(m.Value) != "from kafka-go" {
		t.Fatalf("FetchMessage = %q, %v; want the written message", m.Value, err)
	}
	if tcp, mem := b.Connections(); tcp != 0 || mem == 0 {
		t.Fatalf("after the platform's clients: %d TCP and %d in-memory connections, want 0 TCP and some in memory", tcp, mem)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("from kgo")}).FirstErr(); err != nil {
		t.Fatalf("franz-go produce over TCP: %v", err)
	}
	var got []string
	for len(got) < 2 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("franz-go fetch over TCP: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if got[0] != "from kafka-go" || got[1] != "from kgo" {
		t.Fatalf("franz-go read %q, want both records in order", got)
	}
	if tcp, _ := b.Connections(); tcp == 0 {
		t.Fatal("the franz-go client's connections were not counted as TCP")
	}
	m, err = r.FetchMessage(ctx)
	if err != nil || string(m.Value) != "from kgo" {
		t.Fatalf("the in-memory reader read %q, %v; want the record produced over TCP", m.Value, err)
	}
}

// Dial gives an in-memory connection for a running embedded broker only:
// other addresses, and the broker's once it has stopped, get TCP.
func TestDial(t *testing.T) {
	ctx := ctxTimeout(t, 30*time.Second)
	b := start(t, kafka.EmbeddedOptions{Addr: "127.0.0.1:0"})
	addr := b.Addr()
	for name, dial := range map[string]func() (net.Conn, error){
		"Dial":   func() (net.Conn, error) { return kafka.Dial(ctx, "tcp", addr) },
		"Dialer": func() (net.Conn, error) { return kafka.Dialer{Timeout: time.Second}.Dial("tcp", addr) },
	} {
		c, err := dial()
		if err != nil {
			t.Fatalf("%s to the embedded broker: %v", name, err)
		}
		if n, a := c.RemoteAddr().Network(), c.RemoteAddr().String(); n != "memory" || a != addr {
			t.Errorf("%s to the embedded broker gave a connection to %s %s, want memory %s", name, n, a, addr)
		}
		if a := c.LocalAddr().String(); !strings.HasPrefix(a, "in-process#") {
			t.Errorf("%s: the client end is named %q, want in-process#N", name, a)
		}
		c.Close()
	}

	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c, err := kafka.Dial(ctx, "tcp", other.Addr().String())
	if err != nil {
		t.Fatalf("Dial to a plain TCP listener: %v", err)
	}
	if n := c.RemoteAddr().Network(); n != "tcp" {
		t.Errorf("Dial to a plain TCP listener gave a %q connection, want tcp", n)
	}
	c.Close()

	// Once the broker has stopped, its address is TCP's again: the dial
	// is refused, or reaches whatever took the port since, but is never
	// in memory.
	b.Close()
	if c, err := kafka.Dial(ctx, "tcp", addr); err == nil {
		n := c.RemoteAddr().Network()
		c.Close()
		if n != "tcp" {
			t.Fatalf("Dial to a stopped embedded broker gave a %q connection, want tcp", n)
		}
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial to a stopped embedded broker: %v, want connection refused over TCP", err)
	}
}
