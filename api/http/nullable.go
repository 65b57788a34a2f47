package apihttp

import (
	"bytes"
	"encoding/json"
)

// nullable is a JSON field that may be absent (Set false), null (Value nil)
// or a value. bindFields fills it; a value of another JSON type than T is
// kept in Bad, as Python prints it, for the handler's message.
type nullable[T any] struct {
	Set   bool
	Value *T
	Bad   string
}

// UnmarshalJSON implements json.Unmarshaler (for decoding outside
// bindFields): it runs only when the key is present.
func (n *nullable[T]) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(bytes.TrimSpace(b)) == "null" {
		n.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		var raw any
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if d.Decode(&raw) != nil {
			return err
		}
		n.Bad = pyStr(raw)
		return nil
	}
	n.Value = &v
	return nil
}
