package results

import (
	"encoding/xml"
	"fmt"
	"io"
)

// JUnitFile holds the checks as JUnit test cases, for CI test reporting.
const JUnitFile = "junit.xml"

type junitSuites struct {
	XMLName  xml.Name   `xml:"testsuites"`
	Name     string     `xml:"name,attr"`
	Tests    int        `xml:"tests,attr"`
	Failures int        `xml:"failures,attr"`
	Errors   int        `xml:"errors,attr"`
	Time     string     `xml:"time,attr"`
	Suites   []junitSet `xml:"testsuite"`
}

type junitSet struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Props     []junitProp `xml:"properties>property,omitempty"`
	Cases     []junitCase `xml:"testcase"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// JUnit renders one test case per check; a run that could not be carried
// out adds a "run" case with an error, so CI shows why there are no figures.
func JUnit(w io.Writer, s *Summary) error {
	class := "faultline." + s.Scenario
	dur := fmt.Sprintf("%.3f", s.EndedAt.Sub(s.StartedAt).Seconds())
	set := junitSet{
		Name: "faultline " + s.Scenario, Time: dur, Timestamp: s.StartedAt.UTC().Format("2006-01-02T15:04:05"),
		Props: []junitProp{{"run_id", s.RunID}, {"seed", fmt.Sprint(s.Seed)}, {"verdict", s.Verdict}},
	}
	if s.Error != "" {
		set.Errors++
		set.Cases = append(set.Cases, junitCase{Name: "run", Classname: class, Time: dur,
			Error: &junitProblem{Message: s.Error, Type: "run error", Text: s.Error}})
	}
	for _, c := range s.Checks {
		jc := junitCase{Name: c.Name, Classname: class, Time: "0"}
		if !c.Pass {
			msg := fmt.Sprintf("%s: got %s", c.Expr, num(c.Value))
			if c.Value == -1 {
				msg = fmt.Sprintf("%s: not measurable", c.Expr)
			}
			jc.Failure = &junitProblem{Message: msg, Type: "threshold", Text: fmt.Sprintf("check %s failed: %s", c.Name, msg)}
			set.Failures++
		}
		set.Cases = append(set.Cases, jc)
	}
	set.Tests = len(set.Cases)
	doc := junitSuites{Name: "faultline", Tests: set.Tests, Failures: set.Failures, Errors: set.Errors, Time: dur, Suites: []junitSet{set}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write %s: %w", JUnitFile, err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encode %s: %w", JUnitFile, err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}
