package password

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// b64 is the PHC encoding: standard alphabet, no padding, and (Strict) no
// non-zero trailing bits, so each salt and key has exactly one encoding.
var b64 = base64.RawStdEncoding.Strict()

// encode renders the PHC string of a derived key.
func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses a PHC argon2id string strictly: the exact field order this
// package writes, version 19 only, and parameters within Params.Validate's
// limits. Its errors wrap ErrMalformedHash and never contain the salt or key.
func decode(encoded string) (p Params, salt, key []byte, err error) {
	fields := strings.Split(encoded, "$")
	if len(fields) != 6 || fields[0] != "" {
		return p, nil, nil, fmt.Errorf("%w: want 5 '$'-separated fields", ErrMalformedHash)
	}
	if fields[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: algorithm %q is not argon2id", ErrMalformedHash, fields[1])
	}
	if fields[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: unsupported version %q", ErrMalformedHash, fields[2])
	}
	if p, err = parseParams(fields[3]); err != nil {
		return p, nil, nil, err
	}
	if salt, err = b64.DecodeString(fields[4]); err != nil {
		return p, nil, nil, fmt.Errorf("%w: salt is not unpadded base64", ErrMalformedHash)
	}
	if key, err = b64.DecodeString(fields[5]); err != nil {
		return p, nil, nil, fmt.Errorf("%w: key is not unpadded base64", ErrMalformedHash)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.Validate(); err != nil {
		return p, nil, nil, fmt.Errorf("%w: %w", ErrMalformedHash, err)
	}
	return p, salt, key, nil
}

// parseParams parses "m=<KiB>,t=<passes>,p=<lanes>".
func parseParams(s string) (Params, error) {
	var p Params
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return p, fmt.Errorf("%w: parameters %q are not m=,t=,p=", ErrMalformedHash, s)
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		digits, ok := strings.CutPrefix(parts[i], name)
		if !ok {
			return p, fmt.Errorf("%w: parameters %q are not m=,t=,p=", ErrMalformedHash, s)
		}
		v, err := strconv.ParseUint(digits, 10, 32)
		if err != nil {
			return p, fmt.Errorf("%w: parameter %s%q is not a number", ErrMalformedHash, name, digits)
		}
		vals[i] = v
	}
	if vals[2] > 255 {
		return p, fmt.Errorf("%w: parallelism %d exceeds 255", ErrMalformedHash, vals[2])
	}
	return Params{Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2])}, nil
}
