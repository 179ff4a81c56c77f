package wsroom

// Key is a typed key for values stored on a connection, which replaces a
// map of interface values that callers would have to lock and assert:
//
//	var nick = wsroom.NewKey[string]("nick")
//	nick.Set(c, "ann")
//	name, ok := nick.Get(c)
//
// Keys are compared by identity: two NewKey calls make two keys.
type Key[T any] struct{ name string }

// NewKey returns a new key. The name appears only in String.
func NewKey[T any](name string) *Key[T] { return &Key[T]{name: name} }

// String returns the key's name.
func (k *Key[T]) String() string { return k.name }

// Set stores v on c under k.
func (k *Key[T]) Set(c *Conn, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.values == nil {
		c.values = make(map[any]any)
	}
	c.values[k] = v
}

// Get returns the value stored on c under k, and whether there is one.
func (k *Key[T]) Get(c *Conn) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.values[k].(T)
	return v, ok
}

// Delete removes the value stored on c under k.
func (k *Key[T]) Delete(c *Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.values, k)
}
