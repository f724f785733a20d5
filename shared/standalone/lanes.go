package standalone

import (
	"fmt"
	"sort"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// Priority lanes. Every event of a job carries the job's priority
// (events.ExtPriority) and is published on its lane's subject: the type's
// subject for normal, with ".high" or ".low" appended for the others. A
// stage consumes each lane through a consumer of its own and, whenever a
// worker is free, tries the lanes in a weighted round-robin order — high
// six times in ten, normal three, low once — falling through to the next
// lane when one is empty. Live work is therefore pulled before bulk work,
// and bulk work still gets a tenth of the fetches while both wait: it is
// never starved.
var laneWeight = map[string]int{events.PriorityHigh: 6, events.PriorityNormal: 3, events.PriorityLow: 1}

// lane is one priority of a subscription.
type lane struct {
	// name is the durable consumer's name: the Trigger's, with the lane
	// appended unless the Trigger routes one lane only or it is normal.
	name     string
	priority string
	subject  string
	trigger  *eventing.Trigger // nil for the dead-letter consumer
	delivery eventing.Delivery
	cons     jetstream.Consumer
}

// SubjectOf returns the subject e is published on: its type's subject
// (SubjectFor), on the lane of its priority. Lifecycle events and dead
// letters have no lanes.
func SubjectOf(jobSubject string, e event.Event) string {
	return LaneSubject(SubjectFor(jobSubject, e.Type()), e.Type(), events.PriorityOf(e))
}

// LaneSubject returns the subject of lane priority for events of type t
// whose subject is base.
func LaneSubject(base, t, priority string) string {
	if priority == events.PriorityNormal || events.Lifecycle(t) || base == DeadLetterSubject {
		return base
	}
	return base + "." + priority
}

// subscriptions groups the Triggers that route to the stages by stage and
// event type: one subscription each, with a lane per priority a Trigger
// routes; plus the dead-letter consumer when a stage is a dead-letter sink.
func (r *Runtime) subscriptions(byStage map[string]stage.Stage) ([]*subscription, error) {
	type key struct{ stage, typ string }
	subs := map[key]*subscription{}
	var order []key
	sinks := map[string]stage.Handler{}
	for i := range r.cfg.Triggers {
		t := &r.cfg.Triggers[i]
		if s, ok := byStage[eventing.StageOf(t.Delivery.DeadLetterSink)]; ok {
			sinks[t.Delivery.DeadLetterSink] = s.Handler
		}
		s, ok := byStage[eventing.StageOf(t.Subscriber)]
		if !ok {
			continue
		}
		k := key{s.Name, t.Exact["type"]}
		sub := subs[k]
		if sub == nil {
			sub = &subscription{name: t.Name, stage: s.Name, handler: s.Handler, workers: s.Workers, demand: s.Demand}
			subs[k] = sub
			order = append(order, k)
		}
		base := r.Subject(t.Exact["type"])
		for _, tl := range triggerLanes(*t) {
			p, name := tl.priority, tl.consumer
			if _, ok := laneWeight[p]; !ok {
				return nil, fmt.Errorf("trigger %s: %s %q is not high, normal or low", t.Name, events.ExtPriority, p)
			}
			for _, other := range sub.lanes {
				if other.priority == p {
					return nil, fmt.Errorf("triggers %s and %s both route the %s lane of %s to %s", other.name, name, p, t.Exact["type"], s.Name)
				}
			}
			sub.lanes = append(sub.lanes, &lane{name: name, priority: p, subject: LaneSubject(base, t.Exact["type"], p), trigger: t, delivery: t.Delivery})
		}
	}
	var out []*subscription
	for _, k := range order {
		out = append(out, subs[k].ready())
	}
	if len(sinks) > 0 {
		dl := &subscription{name: "ocrflow-dead-letters", sinks: sinks, workers: 1,
			lanes: []*lane{{name: "ocrflow-dead-letters", priority: events.PriorityNormal, subject: DeadLetterSubject, delivery: deadLetterDelivery}}}
		out = append(out, dl.ready())
	}
	return out, nil
}

// triggerLane is a lane a Trigger routes and the name of its consumer.
type triggerLane struct{ priority, consumer string }

// triggerLanes returns the lanes t routes: the one its ocrpriority filter
// names (consumed under the Trigger's name), or all three (normal under the
// Trigger's name, the others with the lane appended).
func triggerLanes(t eventing.Trigger) []triggerLane {
	if only, ok := t.Exact[events.ExtPriority]; ok {
		return []triggerLane{{only, t.Name}}
	}
	out := make([]triggerLane, 0, 3)
	for _, p := range events.Priorities() {
		name := t.Name
		if p != events.PriorityNormal {
			name += "-" + p
		}
		out = append(out, triggerLane{p, name})
	}
	return out
}

// ConsumerNames returns the names of the durable consumers the runtime
// creates for t, one per lane it routes.
func ConsumerNames(t eventing.Trigger) []string {
	var out []string
	for _, tl := range triggerLanes(t) {
		out = append(out, tl.consumer)
	}
	return out
}

// ready sorts the lanes most urgent first and sets up the round robin and
// the doorbell.
func (sub *subscription) ready() *subscription {
	sort.SliceStable(sub.lanes, func(i, j int) bool {
		return laneWeight[sub.lanes[i].priority] > laneWeight[sub.lanes[j].priority]
	})
	sub.wrr = make([]int, len(sub.lanes))
	sub.bell = make(chan struct{}, 1)
	return sub
}

// order returns the lanes in the order the next fetch tries them: the
// lane the smooth weighted round robin picks, then the others, most urgent
// first. Only the consume loop of sub calls it.
func (sub *subscription) order() []*lane {
	if len(sub.lanes) == 1 {
		return sub.lanes
	}
	total, pick := 0, 0
	for i, ln := range sub.lanes {
		w := laneWeight[ln.priority]
		total += w
		sub.wrr[i] += w
		if sub.wrr[i] > sub.wrr[pick] {
			pick = i
		}
	}
	sub.wrr[pick] -= total
	out := make([]*lane, 0, len(sub.lanes))
	out = append(out, sub.lanes[pick])
	for i, ln := range sub.lanes {
		if i != pick {
			out = append(out, ln)
		}
	}
	return out
}

// ring wakes a waiting consume loop (a doorbell that holds one ring).
func ring(bell chan struct{}) {
	select {
	case bell <- struct{}{}:
	default:
	}
}
