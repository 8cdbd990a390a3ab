package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
)

// The vocabulary that the upstream's tools and the search queries are made
// of: tool names read like real ones (verb_noun), descriptions like real
// ones (a sentence naming a service, a qualifier and argument names), so
// that posting lists in the search index have realistic lengths.
var (
	verbs = strings.Fields(`get list create update delete search find fetch send read write archive
		export import sync merge rename move copy schedule cancel approve reject publish deploy build
		scan resolve assign close reopen summarize translate convert validate compare analyze monitor
		restart backup restore label upload download share invite notify count watch rollback tag`)
	nouns = strings.Fields(`issue pull_request commit branch repository file folder document spreadsheet
		invoice payment customer order product ticket incident alert metric log trace dashboard calendar
		event meeting email message channel user team project task milestone release deployment container
		image cluster node pod secret certificate domain record database table row column query report
		chart note page comment review webhook subscription plan quota budget expense contract lead
		opportunity campaign contact account workspace pipeline job workflow artifact package dependency
		vulnerability policy role permission group session token key bucket object volume snapshot
		backup schedule reminder survey form response feedback article post thread playlist track
		video photo album location route shipment warehouse inventory supplier refund coupon discount`)
	qualifiers = strings.Fields(`recent open closed archived pending failed public private shared draft
		latest daily weekly monthly remote local unread starred assigned overdue active inactive stale
		critical flaky duplicate blocked scheduled recurring external internal`)
	services = strings.Fields(`github gitlab jira linear slack discord gmail outlook drive dropbox notion
		confluence stripe paypal salesforce hubspot zendesk intercom datadog sentry grafana pagerduty
		kubernetes docker aws gcp azure postgres mysql redis elasticsearch snowflake bigquery airtable
		asana trello figma shopify twilio sendgrid spotify youtube maps calendar`)
	argNames = strings.Fields(`id name query limit cursor owner repo path title body status priority
		assignee due_date start end email channel text tags amount currency region namespace labels
		sort order since until format timezone language project team user_id folder_id url visibility`)
)

// toolsPerServer is how many tools each upstream tool server lists.
const toolsPerServer = 10

// genTool is one generated tool.
type genTool struct {
	name, description string
	schema            json.RawMessage
}

// serverTools are the tools of upstream tool server i: the same for the
// same i on every run.
func serverTools(i int) []genTool {
	rng := rand.New(rand.NewPCG(uint64(i), 0x5eed))
	service := services[i%len(services)]
	out := make([]genTool, 0, toolsPerServer)
	seen := map[string]bool{}
	for len(out) < toolsPerServer {
		verb, noun, qual := pick(rng, verbs), pick(rng, nouns), pick(rng, qualifiers)
		name := verb + "_" + noun
		if seen[name] {
			name = verb + "_" + qual + "_" + noun
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		args := []string{pick(rng, argNames), pick(rng, argNames), pick(rng, argNames)}
		props := map[string]any{}
		for _, a := range args {
			props[a] = map[string]any{"type": "string", "description": "The " + strings.ReplaceAll(a, "_", " ") + " of the " + strings.ReplaceAll(noun, "_", " ") + "."}
		}
		schema, _ := json.Marshal(map[string]any{"type": "object", "properties": props})
		out = append(out, genTool{
			name: name,
			description: fmt.Sprintf("%s %s %ss in %s, filtered by %s, %s and %s.",
				capitalize(verb), qual, strings.ReplaceAll(noun, "_", " "), capitalize(service), args[0], args[1], args[2]),
			schema: schema,
		})
	}
	return out
}

// searchQueries are queries of one to three words as an agent would type
// them: an action and an object, sometimes a service or a qualifier.
func searchQueries(n int) []string {
	rng := rand.New(rand.NewPCG(42, 7))
	out := make([]string, n)
	for i := range out {
		noun := strings.ReplaceAll(pick(rng, nouns), "_", " ")
		switch i % 4 {
		case 0:
			out[i] = pick(rng, verbs) + " " + noun
		case 1:
			out[i] = pick(rng, verbs) + " " + pick(rng, qualifiers) + " " + noun
		case 2:
			out[i] = noun + " " + pick(rng, services)
		default:
			out[i] = noun
		}
	}
	return out
}

func pick(rng *rand.Rand, list []string) string { return list[rng.IntN(len(list))] }

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
