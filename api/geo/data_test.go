package geo

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDataMatchesDocs: docs/data.md describes the embedded files as they
// are: checksums, the count per department and the 19 codes that are not
// municipios all exist in the data.
func TestDataMatchesDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/data.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for name, data := range map[string][]byte{"departments.csv": departmentsCSV, "municipalities.csv": municipalitiesCSV} {
		sum := sha256.Sum256(data)
		if want := "`" + name + "`: `" + hex.EncodeToString(sum[:]) + "`"; !strings.Contains(doc, want) {
			t.Errorf("docs/data.md does not give %s's checksum: want a line with %s", name, want)
		}
	}
	deps, err := Departments()
	if err != nil {
		t.Fatal(err)
	}
	muns, err := Municipalities()
	if err != nil {
		t.Fatal(err)
	}
	if len(deps) != 33 || len(muns) != 1122 || !strings.Contains(doc, "| 1,122 |") || !strings.Contains(doc, "| 33:") {
		t.Errorf("%d departments, %d municipalities: docs/data.md says 33 and 1,122", len(deps), len(muns))
	}
	per := map[string]int{}
	names := map[string]string{}
	for _, m := range muns {
		per[m.DepartmentCode]++
		names[m.Code] = m.Name
	}
	block := doc[strings.Index(doc, "Municipalities per department:"):]
	block = block[:strings.Index(block, "\n\n")]
	counts := regexp.MustCompile(`(\d{2}): (\d+)`).FindAllStringSubmatch(block, -1)
	if len(counts) != len(deps) {
		t.Errorf("docs/data.md counts %d departments, the data has %d", len(counts), len(deps))
	}
	for _, m := range counts {
		if n, _ := strconv.Atoi(m[2]); per[m[1]] != n {
			t.Errorf("department %s: docs/data.md says %d municipalities, the data has %d", m[1], n, per[m[1]])
		}
	}
	// The island and the 18 areas: each "CODE Name" listed is in the data under that name.
	kinds := doc[strings.Index(doc, "- 1 island:"):strings.Index(doc, "The files do not carry")]
	listed := regexp.MustCompile(`(\d{5}) ([^,.]+?)(?:,|\.\n)`).FindAllStringSubmatch(kinds, -1)
	if len(listed) != 19 {
		t.Errorf("docs/data.md lists %d codes that are not municipios, want 19", len(listed))
	}
	for _, m := range listed {
		if name := strings.Join(strings.Fields(m[2]), " "); names[m[1]] != name {
			t.Errorf("%s: docs/data.md says %q, the data %q", m[1], name, names[m[1]])
		}
	}
}
