package engine

import (
	"container/heap"
	"math/rand/v2"
	"time"
)

// The in-flight policies against a simulated model server, in virtual
// time: deterministic, so tests assert on utilisation, queue length and
// limits without a wall clock.
//
// The server serves C requests at once, each for L (optionally ± a
// uniform jitter), and queues the rest in arrival order — vLLM's
// scheduler — or answers 429 beyond C. Each ocrflow process holds as many
// pages as its limiter's Demand (the standalone runtime's pulls), from an
// endless backlog unless a supply is set. A page's life: pre-processing on
// the CPU (event, record, image), the limiter's FIFO, the request (CPU to
// prepare it, the server, CPU to decode the answer) with the slot held,
// then post-processing on the CPU (store, publish, ack) before its worker
// takes the next page. The CPU is a pool of cores shared by every process
// (a 2-core machine), so a burst of answers queues for it as it does in
// reality.

// simConfig describes a simulation.
type simConfig struct {
	capacity int
	latency  time.Duration
	jitter   float64 // ± share of latency, uniform
	reject   bool    // 429 beyond capacity instead of queueing

	procs    int
	adaptive bool
	gauges   bool // the server's gauges can be read
	max      int  // OCR_MAX_INFLIGHT
	oneByOne bool // the seed's design: one page at a time, no limiter

	// supply caps the pages a process may hold at once (0 = as many as
	// Demand says): an app-limited process.
	supply int

	cores               int
	pre, req, ans, post time.Duration // CPU per page

	duration, warmup time.Duration
	seed             uint64
}

func (c simConfig) withDefaults() simConfig {
	if c.procs == 0 {
		c.procs = 1
	}
	if c.max == 0 {
		c.max = DefaultMaxInflight
	}
	if c.cores == 0 {
		c.cores = 2
	}
	if c.pre == 0 && c.req == 0 && c.ans == 0 && c.post == 0 {
		c.pre, c.req, c.ans, c.post = 3*time.Millisecond, 3*time.Millisecond, 2*time.Millisecond, 4*time.Millisecond
	}
	if c.duration == 0 {
		c.duration = 40 * c.latency
	}
	if c.warmup == 0 {
		c.warmup = 10 * c.latency
	}
	return c
}

// simResult is what a simulation measured after the warm-up.
type simResult struct {
	util      float64 // mean running / C
	queue     float64 // mean waiting at the server
	queueMax  int
	completed int
	rejected  int
	limits    []int         // each process's final limit
	limitMax  int           // the highest limit any process reached
	fill      time.Duration // when the server first ran C at once
	maxHeld   int           // most pages a process held at once
}

type simEvent struct {
	at  time.Duration
	seq int
	fn  func()
}

type simQueue []simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type sim struct {
	cfg  simConfig
	now  time.Duration
	seq  int
	q    simQueue
	rand *rand.Rand

	// server
	running int
	waiting []func() // started when a slot frees
	// CPU
	busyCores int
	cpuQueue  []cpuJob

	// time-weighted sums after warmup
	lastAt            time.Duration
	areaRun, areaWait float64
	res               simResult
	procs             []*simProc
	filled            bool
	epoch             time.Time
}

type cpuJob struct {
	d    time.Duration
	done func()
}

type simProc struct {
	s        *sim
	ctl      *control
	held     int // pages in hand (the runtime's workers in use)
	inflight int // calls inside the limiter
	waiters  []func()
	polling  bool
}

func runSim(cfg simConfig) simResult {
	cfg = cfg.withDefaults()
	s := &sim{cfg: cfg, rand: rand.New(rand.NewPCG(cfg.seed, 7)), epoch: time.Unix(0, 0)}
	for range cfg.procs {
		p := &simProc{s: s, ctl: newControl(cfg.max, cfg.adaptive)}
		if cfg.oneByOne {
			p.ctl = newControl(1, false)
		}
		s.procs = append(s.procs, p)
	}
	for i, p := range s.procs {
		// Processes start a little apart, as pods do.
		s.at(time.Duration(i)*cfg.latency/3, p.pull)
	}
	for s.q.Len() > 0 {
		e := heap.Pop(&s.q).(simEvent)
		if e.at > cfg.duration {
			break
		}
		s.advance(e.at)
		e.fn()
	}
	s.advance(cfg.duration)
	span := (cfg.duration - cfg.warmup).Seconds()
	s.res.util = s.areaRun / span / float64(cfg.capacity)
	s.res.queue = s.areaWait / span
	for _, p := range s.procs {
		s.res.limits = append(s.res.limits, p.ctl.current())
	}
	return s.res
}

func (s *sim) at(d time.Duration, fn func()) {
	s.seq++
	heap.Push(&s.q, simEvent{at: s.now + d, seq: s.seq, fn: fn})
}

func (s *sim) advance(t time.Duration) {
	if t > s.cfg.warmup {
		from := max(s.lastAt, s.cfg.warmup)
		dt := (t - from).Seconds()
		s.areaRun += float64(s.running) * dt
		s.areaWait += float64(len(s.waiting)) * dt
	}
	s.lastAt = t
	s.now = t
}

func (s *sim) clock() time.Time { return s.epoch.Add(s.now) }

// cpu runs d of CPU work on the shared cores, then done.
func (s *sim) cpu(d time.Duration, done func()) {
	if s.busyCores < s.cfg.cores {
		s.busyCores++
		s.at(d, func() { s.cpuFree(); done() })
		return
	}
	s.cpuQueue = append(s.cpuQueue, cpuJob{d, done})
}

func (s *sim) cpuFree() {
	s.busyCores--
	if len(s.cpuQueue) > 0 {
		j := s.cpuQueue[0]
		s.cpuQueue = s.cpuQueue[1:]
		s.busyCores++
		s.at(j.d, func() { s.cpuFree(); j.done() })
	}
}

// serve sends one request: done(true) with the answer, done(false) on a 429.
func (s *sim) serve(done func(ok bool)) {
	start := func() {
		s.running++
		if s.running >= s.cfg.capacity && !s.filled {
			s.filled, s.res.fill = true, s.now
		}
		if s.now > s.cfg.warmup {
			s.res.queueMax = max(s.res.queueMax, len(s.waiting))
		}
		d := s.cfg.latency
		if s.cfg.jitter > 0 {
			d = time.Duration(float64(d) * (1 + s.cfg.jitter*(2*s.rand.Float64()-1)))
		}
		s.at(d, func() {
			s.running--
			if len(s.waiting) > 0 {
				next := s.waiting[0]
				s.waiting = s.waiting[1:]
				next()
			}
			if s.now > s.cfg.warmup {
				s.res.completed++
			}
			done(true)
		})
	}
	switch {
	case s.running < s.cfg.capacity:
		start()
	case s.cfg.reject:
		s.res.rejected++
		s.at(time.Millisecond, func() { done(false) })
	default:
		s.waiting = append(s.waiting, start)
	}
}

// demand is what the runtime pulls for the process: Demand of the limiter.
func (p *simProc) demand() int {
	if p.s.cfg.oneByOne {
		return 1
	}
	d := demandFor(p.ctl.current())
	if p.s.cfg.supply > 0 {
		d = min(d, p.s.cfg.supply)
	}
	return d
}

// pull takes pages while the process holds fewer than its demand.
func (p *simProc) pull() {
	for p.held < p.demand() {
		p.held++
		p.s.res.maxHeld = max(p.s.res.maxHeld, p.held)
		p.s.cpu(p.s.cfg.pre, p.acquire)
	}
	if p.s.cfg.gauges && p.s.cfg.adaptive && !p.polling {
		p.polling = true
		p.s.at(0, p.poll)
	}
}

var simTrace func(s *sim, p *simProc, what string)

func (p *simProc) poll() {
	s := p.s
	p.ctl.observed(float64(s.running), float64(len(s.waiting)), p.inflight)
	if simTrace != nil {
		simTrace(s, p, "poll")
	}
	p.s.res.limitMax = max(p.s.res.limitMax, p.ctl.current())
	p.wake() // the limit may have grown: waiting calls start …
	p.pull() // … and the runtime pulls more
	s.at(pollPeriod(p.ctl.base), p.poll)
}

func (p *simProc) acquire() {
	if p.inflight < p.ctl.current() && len(p.waiters) == 0 {
		p.inflight++
		p.ctl.acquired(false, p.inflight)
		p.call(p.inflight)
		return
	}
	p.waiters = append(p.waiters, func() {
		p.ctl.acquired(true, p.inflight)
		p.call(p.inflight)
	})
}

func (p *simProc) wake() {
	for p.inflight < p.ctl.current() && len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.inflight++
		w()
	}
}

// call makes the page's request with its slot held, retrying 429s after
// a backoff.
func (p *simProc) call(sent int) {
	s := p.s
	start := s.now
	s.cpu(s.cfg.req, func() {
		s.serve(func(ok bool) {
			if !ok {
				p.ctl.overloaded(s.clock())
				if simTrace != nil {
					simTrace(s, p, "429")
				}
				p.inflight--
				p.wake()
				s.at(overloadBackoffMin, p.acquire)
				return
			}
			s.cpu(s.cfg.ans, func() {
				n := p.ctl.round.n
				p.ctl.succeeded(s.now-start, sent)
				if simTrace != nil && p.ctl.round.n < n {
					simTrace(s, p, "round")
				}
				p.s.res.limitMax = max(p.s.res.limitMax, p.ctl.current())
				p.inflight--
				p.wake()
				s.cpu(s.cfg.post, func() {
					p.held--
					p.pull()
				})
			})
		})
	})
}
