package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// In-process connections to the embedded broker.
//
// In `strata dev` and `strata bench` the embedded broker runs in the same
// process as every client the platform builds: the gateway's producer, the
// workers' and projectors' readers, the relays' writers. Over loopback TCP
// each request and each response costs system calls and a pass through the
// kernel's network stack on both ends, and on the 2-core reference VM a
// system call is dear: Kafka traffic was about 40% of the process's system
// calls. So the broker's listener also accepts in-memory connections
// (net.Pipe), and Dial, through which every client of this package and the
// command bus connects, hands one out when the address is that of an
// embedded broker of this process. Everything else is unchanged: the same
// Kafka protocol, the same broker, the same client code paths. Clients in
// other processes (kcat, analytics consumers) use the TCP listener as
// before, and against a real cluster Dial is a plain TCP dial. net.Pipe has
// no buffer, unlike a socket: a write waits for the peer's read. That
// suits these clients, because the broker reads one request ahead and
// handles a connection's requests one at a time, and every client reads
// its responses apart from writing its requests.

// local maps the address each running embedded broker listens on, and
// advertises, to its listener.
var local sync.Map

// dialTimeout bounds a TCP dial that no caller's context bounds.
const dialTimeout = 10 * time.Second

// Dial connects to the Kafka broker at address: in memory when an embedded
// broker of this process listens there, over network otherwise. It has the
// signature of kafka-go's Dialer.DialFunc and Transport.Dial.
func Dial(ctx context.Context, network, address string) (net.Conn, error) {
	if l, ok := local.Load(address); ok {
		return l.(*listener).dial(ctx)
	}
	d := net.Dialer{Timeout: dialTimeout}
	return d.DialContext(ctx, network, address)
}

// Dialer is Dial for clients that take a dialer without a context, such as
// sarama's Net.Proxy.Dialer; Timeout bounds each dial.
type Dialer struct{ Timeout time.Duration }

// Dial connects to address as the package's Dial does.
func (d Dialer) Dial(network, address string) (net.Conn, error) {
	ctx := context.Background()
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	return Dial(ctx, network, address)
}

// listener is the embedded broker's listener: the connections accepted on
// a TCP listener and those dialled in memory, in the order they come.
type listener struct {
	tcp   net.Listener
	log   *slog.Logger
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once

	tcpAccepted, memAccepted atomic.Int64
	dials                    atomic.Int64
}

// listen starts accepting on tcp and registers the listener for in-memory
// dials to tcp's address.
func listen(tcp net.Listener, log *slog.Logger) *listener {
	l := &listener{tcp: tcp, log: log, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptTCP()
	local.Store(tcp.Addr().String(), l)
	return l
}

// acceptTCP hands the TCP listener's connections to Accept until Close. A
// failed accept other than a closed listener (too many open files, say) is
// logged and retried after a pause, so that it never ends the broker's
// accept loop.
func (l *listener) acceptTCP() {
	for {
		c, err := l.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Warn("kafka: embedded broker: accept", "err", err)
			select {
			case <-l.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		select {
		case l.conns <- c:
			l.tcpAccepted.Add(1)
		case <-l.done:
			c.Close()
			return
		}
	}
}

// dial returns the client end of a new in-memory connection once the broker
// has accepted the other end.
func (l *listener) dial(ctx context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	id := memAddr(fmt.Sprintf("in-process#%d", l.dials.Add(1)))
	broker := memAddr(l.tcp.Addr().String())
	client = memConn{Conn: client, local: id, remote: broker}
	server = memConn{Conn: server, local: broker, remote: id}
	select {
	case l.conns <- server:
		l.memAccepted.Add(1)
		return client, nil
	case <-l.done:
		err := fmt.Errorf("kafka: dial the embedded broker at %s: %w", l.tcp.Addr(), net.ErrClosed)
		client.Close()
		server.Close()
		return nil, err
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, ctx.Err()
	}
}

// Accept returns the next connection, TCP or in memory.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops both kinds of connections; later in-memory dials to the
// address go to TCP and find nobody listening.
func (l *listener) Close() error {
	l.once.Do(func() {
		local.CompareAndDelete(l.tcp.Addr().String(), l)
		close(l.done)
	})
	return l.tcp.Close()
}

// Addr is the TCP address, which the broker advertises.
func (l *listener) Addr() net.Addr { return l.tcp.Addr() }

// memConn is one end of an in-memory connection. Its addresses are of the
// network "memory": the broker's TCP address on the broker's side, and
// in-process#N for the client, which is how the broker's logs and its
// consumer-group descriptions name the connection.
type memConn struct {
	net.Conn
	local, remote net.Addr
}

func (c memConn) LocalAddr() net.Addr  { return c.local }
func (c memConn) RemoteAddr() net.Addr { return c.remote }

type memAddr string

func (a memAddr) Network() string { return "memory" }
func (a memAddr) String() string  { return string(a) }
