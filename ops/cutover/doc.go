// Package cutover moves a running Django deployment to isis: imports from
// Django's database (catch-up, then final after Django stops) and the switch.
package cutover
