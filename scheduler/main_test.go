package scheduler

import (
	"testing"

	"github.com/outreach-dev/outreach/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
