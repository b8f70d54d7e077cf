package aggregates

import (
	"bytes"
	"encoding/json"
	"reflect"
)

// decodeInto decodes data into a fresh value of proto's dynamic type and
// returns it as the same (value, not pointer) type. Unknown fields are errors.
func decodeInto[T any](proto T, data []byte) (T, error) {
	var zero T
	ptr := reflect.New(reflect.TypeOf(proto))
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
		dec = json.NewDecoder(bytes.NewReader(data))
	}
	if err := dec.Decode(ptr.Interface()); err != nil {
		return zero, err
	}
	return ptr.Elem().Interface().(T), nil
}
