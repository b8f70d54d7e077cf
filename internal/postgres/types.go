package postgres

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// RegisterTypes teaches a connection to send Go strings as uuids in
// binary. The runtime passes ids as strings, and arrays of them ($1::uuid[])
// on every hot statement. pgx encodes an array in binary first, and has no
// binary plan for string → uuid: each such parameter first failed, with
// an error message that formatted the whole slice (8% of a projector's
// CPU), before pgx fell back to text. A string that is not a UUID still
// fails here and falls back to text, so Postgres reports it as before.
func RegisterTypes(_ context.Context, conn *pgx.Conn) error {
	m := conn.TypeMap()
	u := &pgtype.Type{Name: "uuid", OID: pgtype.UUIDOID, Codec: uuidCodec{}}
	m.RegisterType(u)
	m.RegisterType(&pgtype.Type{Name: "_uuid", OID: pgtype.UUIDArrayOID, Codec: &pgtype.ArrayCodec{ElementType: u}})
	return nil
}

// uuidCodec is pgx's UUIDCodec plus a binary plan for strings.
type uuidCodec struct{ pgtype.UUIDCodec }

func (c uuidCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(string); ok && format == pgtype.BinaryFormatCode {
		return stringUUIDBinary{}
	}
	return c.UUIDCodec.PlanEncode(m, oid, format, value)
}

type stringUUIDBinary struct{}

var errNotUUID = errors.New("not a UUID")

func (stringUUIDBinary) Encode(value any, buf []byte) ([]byte, error) {
	s := value.(string)
	if len(s) != 36 { // only the hyphenated form; Postgres judges the others
		return nil, errNotUUID
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return nil, errNotUUID
	}
	return append(buf, u[:]...), nil
}
