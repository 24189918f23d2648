package proxy

// FilterMayContain reports what the installed filter says of key, and
// whether a filter is installed.
func (p *Proxy) FilterMayContain(key []byte) (may, installed bool) {
	f := p.filter.Load()
	if f == nil {
		return false, false
	}
	return f.f.MayContain(key), true
}
