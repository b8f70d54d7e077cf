#!/bin/sh
# Creates Strata's Kafka topics (DESIGN.md §3.1, §3.2). Idempotent: safe to run
# on every `docker compose up` and as a Kubernetes Job on every deploy.
#
#   <service>.commands       signed command envelopes, key = aggregate id
#   <service>.commands.dlq   commands that could not be decoded
#   <service>.<aggregate>    the events: the analytics contract
#
# Every topic keeps its whole history (retention.ms=-1): events are the source
# of truth that projections, replay and audit read, and commands and their DLQs
# are kept for audit too.
#
# Runs with the Kafka CLI tools (the apache/kafka image has them under
# /opt/kafka/bin). POSIX sh, so it also runs under busybox/dash.
#
# Environment:
#   BOOTSTRAP_SERVERS     comma-separated brokers            (default kafka:9092)
#   TOPIC_PARTITIONS      partitions per new topic           (default 6)
#   TOPIC_RF              replication factor of new topics   (default 1; production 3)
#   TOPIC_MIN_ISR         min.insync.replicas                (default 1; production 2)
#   KAFKA_BIN             directory of kafka-topics.sh etc.  (default /opt/kafka/bin)
#   KAFKA_COMMAND_CONFIG  optional client properties file (SASL/TLS), passed as --command-config
#   KAFKA_WAIT_SECONDS    how long to wait for the cluster   (default 120)
#
# Partitions bound the parallelism of each consumer group. They are only set at
# creation: this script never changes the partition count of an existing topic,
# because that would move keys to other partitions and break per-aggregate
# order. It does converge retention.ms and min.insync.replicas of existing
# topics to the values above.
set -eu

# ---------------------------------------------------------------------------
# The topics. One name per line; blank lines and # comments are ignored.
# Adding an aggregate = adding its <service>.<aggregate> line here.
# ---------------------------------------------------------------------------
TOPICS='
# auth
auth.commands
auth.commands.dlq
auth.permission
auth.role
auth.user
auth.login

# account
account.commands
account.commands.dlq
account.asset-account
account.transfer
account.pay-plan
account.message-template
account.message-group

# client
client.commands
client.commands.dlq
client.client

# event
event.commands
event.commands.dlq
event.event
event.signal
event.broker
event.publisher

# thing
thing.commands
thing.commands.dlq
thing.item
thing.stock
thing.code
'

BOOTSTRAP_SERVERS=${BOOTSTRAP_SERVERS:-kafka:9092}
TOPIC_PARTITIONS=${TOPIC_PARTITIONS:-6}
TOPIC_RF=${TOPIC_RF:-1}
TOPIC_MIN_ISR=${TOPIC_MIN_ISR:-1}
KAFKA_BIN=${KAFKA_BIN:-/opt/kafka/bin}
KAFKA_COMMAND_CONFIG=${KAFKA_COMMAND_CONFIG:-}
KAFKA_WAIT_SECONDS=${KAFKA_WAIT_SECONDS:-120}

log() { printf '%s topics: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }

is_uint "$TOPIC_PARTITIONS" && [ "$TOPIC_PARTITIONS" -ge 1 ] || die "TOPIC_PARTITIONS must be an integer >= 1, got '$TOPIC_PARTITIONS'"
is_uint "$TOPIC_RF" && [ "$TOPIC_RF" -ge 1 ] || die "TOPIC_RF must be an integer >= 1, got '$TOPIC_RF'"
is_uint "$TOPIC_MIN_ISR" && [ "$TOPIC_MIN_ISR" -ge 1 ] || die "TOPIC_MIN_ISR must be an integer >= 1, got '$TOPIC_MIN_ISR'"
is_uint "$KAFKA_WAIT_SECONDS" || die "KAFKA_WAIT_SECONDS must be an integer, got '$KAFKA_WAIT_SECONDS'"
[ "$TOPIC_MIN_ISR" -le "$TOPIC_RF" ] || die "TOPIC_MIN_ISR ($TOPIC_MIN_ISR) must not exceed TOPIC_RF ($TOPIC_RF): acks=all writes would always fail"
if [ "$TOPIC_RF" -gt 1 ] && [ "$TOPIC_MIN_ISR" -eq "$TOPIC_RF" ]; then
	log "WARNING: min.insync.replicas == replication factor ($TOPIC_RF): one broker down stops all writes; production uses RF 3, min ISR 2"
fi
[ -x "$KAFKA_BIN/kafka-topics.sh" ] || die "$KAFKA_BIN/kafka-topics.sh not found (set KAFKA_BIN)"

# The client-config option, if any, as positional parameters of the tool calls.
kafka_topics() {
	if [ -n "$KAFKA_COMMAND_CONFIG" ]; then
		"$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP_SERVERS" --command-config "$KAFKA_COMMAND_CONFIG" "$@"
	else
		"$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP_SERVERS" "$@"
	fi
}
kafka_configs() {
	if [ -n "$KAFKA_COMMAND_CONFIG" ]; then
		"$KAFKA_BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP_SERVERS" --command-config "$KAFKA_COMMAND_CONFIG" "$@"
	else
		"$KAFKA_BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP_SERVERS" "$@"
	fi
}

# The list without comments and blank lines, one name per line.
wanted=$(printf '%s\n' "$TOPICS" | sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d')
[ -n "$wanted" ] || die "topic list is empty"

# --- wait for the cluster ---------------------------------------------------
log "waiting for Kafka at $BOOTSTRAP_SERVERS (up to ${KAFKA_WAIT_SECONDS}s)"
deadline=$(($(date +%s) + KAFKA_WAIT_SECONDS))
until existing=$(kafka_topics --list 2>/dev/null); do
	[ "$(date +%s)" -lt "$deadline" ] || die "Kafka at $BOOTSTRAP_SERVERS not reachable after ${KAFKA_WAIT_SECONDS}s"
	sleep 2
done

# --- create the missing ones ------------------------------------------------
created=0
for topic in $wanted; do
	if printf '%s\n' "$existing" | grep -Fqx -- "$topic"; then
		continue
	fi
	log "creating $topic (partitions=$TOPIC_PARTITIONS rf=$TOPIC_RF min.insync.replicas=$TOPIC_MIN_ISR retention.ms=-1)"
	# --if-not-exists: another run may have created it since the --list.
	kafka_topics --create --if-not-exists --topic "$topic" \
		--partitions "$TOPIC_PARTITIONS" \
		--replication-factor "$TOPIC_RF" \
		--config retention.ms=-1 \
		--config min.insync.replicas="$TOPIC_MIN_ISR"
	created=$((created + 1))
done

# --- verify, and converge the configs of topics that already existed ---------
# One --describe for all of them (--topic takes a regular expression there).
regex=$(printf '%s\n' "$wanted" | sed -e 's/\./\\./g' | tr '\n' '|' | sed -e 's/|$//')
described=$(kafka_topics --describe --topic "^($regex)\$" | grep 'PartitionCount:' || true)

fixed=0
for topic in $wanted; do
	# The summary line looks like:
	# Topic: auth.user	TopicId: …	PartitionCount: 6	ReplicationFactor: 1	Configs: min.insync.replicas=1,retention.ms=-1
	line=$(printf '%s\n' "$described" | grep -E "^Topic:[[:space:]]+$(printf '%s' "$topic" | sed 's/\./\\./g')[[:space:]]" || true)
	[ -n "$line" ] || die "$topic is missing after creation"

	partitions=$(printf '%s\n' "$line" | sed -n 's/.*PartitionCount:[[:space:]]*\([0-9]*\).*/\1/p')
	rf=$(printf '%s\n' "$line" | sed -n 's/.*ReplicationFactor:[[:space:]]*\([0-9]*\).*/\1/p')
	if [ -n "$partitions" ] && [ "$partitions" -lt "$TOPIC_PARTITIONS" ]; then
		log "WARNING: $topic has $partitions partitions (< $TOPIC_PARTITIONS); not changed: adding partitions remaps keys and breaks per-aggregate order"
	fi
	if [ -n "$rf" ] && [ "$rf" -lt "$TOPIC_RF" ]; then
		log "WARNING: $topic has replication factor $rf (< $TOPIC_RF); raise it with kafka-reassign-partitions.sh"
	fi

	# The topic's overrides, as ",k=v,k=v," so that a key matches whole.
	configs=,$(printf '%s\n' "$line" | sed -n 's/.*Configs:[[:space:]]*//p' | tr -d '[:space:]'),
	add=''
	case $configs in *,retention.ms=-1,*) ;; *) add="retention.ms=-1" ;; esac
	case $configs in
	*",min.insync.replicas=$TOPIC_MIN_ISR,"*) ;;
	*) add="${add:+$add,}min.insync.replicas=$TOPIC_MIN_ISR" ;;
	esac
	if [ -n "$add" ]; then
		log "setting $add on existing topic $topic"
		kafka_configs --alter --entity-type topics --entity-name "$topic" --add-config "$add"
		fixed=$((fixed + 1))
	fi
done

total=$(printf '%s\n' "$wanted" | wc -l | tr -d ' ')
log "done: $total topics, $created created, $fixed reconfigured"
