package apihttp

// nullable is a JSON field that may be absent (Set false), null (Value nil)
// or a value. bindFields fills it; a value of another JSON type than a
// string is kept in Bad, as Python prints it, for the handler's message.
type nullable[T any] struct {
	Set   bool
	Value *T
	Bad   string
}
