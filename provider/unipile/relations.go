package unipile

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/internal/httpclient"
)

var (
	_ provider.RelationLister = (*Client)(nil)
	_ provider.AccountChecker = (*Client)(nil)
)

// relationList is the part of Unipile's UserRelationsList outreach reads
// (Node SDK: dist/types/users/user-relations-list.types.d.ts).
type relationList struct {
	Object string `json:"object"`
	Items  []struct {
		CreatedAt        *float64 `json:"created_at"`
		PublicIdentifier string   `json:"public_identifier"`
		MemberID         string   `json:"member_id"`
	} `json:"items"`
	Cursor *string `json:"cursor"`
}

// MaxRelationsPage is the most relations ListRelations asks for in one
// page.
const MaxRelationsPage = 1000

// ListRelations reads one page of accountID's relations, newest first
// (GET /api/v1/users/relations). limit 0 leaves Unipile's default page
// size. A body that is not a UserRelationsList with items is a transient
// unexpected_response: an empty page is never invented.
func (c *Client) ListRelations(ctx context.Context, accountID, cursor string, limit int) (provider.RelationPage, error) {
	const op = "relations"
	if accountID == "" {
		return provider.RelationPage{}, c.badInput(op, "missing_parameters", "account_id is required")
	}
	q := url.Values{"account_id": {accountID}}
	if cursor != "" {
		// The SDK sends either a limit or a cursor (which holds one).
		q.Set("cursor", cursor)
	} else if limit > 0 {
		q.Set("limit", strconv.Itoa(min(limit, MaxRelationsPage)))
	}
	res, err := c.base.Do(ctx, httpclient.Request{Op: op, Method: http.MethodGet,
		Path: "/api/v1/users/relations", Query: q, Header: c.header()})
	if err != nil {
		return provider.RelationPage{}, err
	}
	if res.Status != http.StatusOK {
		return provider.RelationPage{}, c.fail(op, res)
	}
	var l relationList
	if err := json.Unmarshal(res.Body, &l); err != nil || l.Items == nil {
		return provider.RelationPage{}, c.badBody(op, res, "UserRelationsList with items")
	}
	page := provider.RelationPage{Relations: make([]provider.Relation, 0, len(l.Items))}
	for _, it := range l.Items {
		if it.MemberID == "" && it.PublicIdentifier == "" {
			return provider.RelationPage{}, c.badBody(op, res, "UserRelation with member_id or public_identifier")
		}
		r := provider.Relation{ProviderID: it.MemberID, PublicID: it.PublicIdentifier}
		if it.CreatedAt != nil && *it.CreatedAt > 0 {
			r.CreatedAt = time.UnixMilli(int64(*it.CreatedAt)).UTC()
		}
		page.Relations = append(page.Relations, r)
	}
	if l.Cursor != nil && *l.Cursor != cursor {
		page.Cursor = *l.Cursor
	}
	return page, nil
}

// accountResponse is the part of Unipile's Account outreach reads (Node
// SDK: dist/types/accounts/account.types.d.ts, sources[].status).
type accountResponse struct {
	Object  string `json:"object"`
	ID      string `json:"id"`
	Sources []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"sources"`
}

// statusRank orders Unipile's source statuses from running to the worst:
// an account is reported by its worst source.
var statusRank = map[string]int{"OK": 0, "CONNECTING": 1, "STOPPED": 2, "ERROR": 3, "PERMISSIONS": 4, "CREDENTIALS": 5}

// CheckAccount reads accountID's connection status (GET
// /api/v1/accounts/{id}): Running when every source is OK. It makes no
// LinkedIn call. A body without sources is a transient
// unexpected_response; an unknown status counts as not running.
func (c *Client) CheckAccount(ctx context.Context, accountID string) (provider.AccountState, error) {
	const op = "account"
	if accountID == "" {
		return provider.AccountState{}, c.badInput(op, "missing_parameters", "account_id is required")
	}
	res, err := c.base.Do(ctx, httpclient.Request{Op: op, Method: http.MethodGet,
		Path: "/api/v1/accounts/" + url.PathEscape(accountID), Header: c.header()})
	if err != nil {
		return provider.AccountState{}, err
	}
	if res.Status != http.StatusOK {
		return provider.AccountState{}, c.fail(op, res)
	}
	var a accountResponse
	if err := json.Unmarshal(res.Body, &a); err != nil || len(a.Sources) == 0 {
		return provider.AccountState{}, c.badBody(op, res, "Account with sources")
	}
	worst, rank := "", -1
	for _, s := range a.Sources {
		r, known := statusRank[s.Status]
		if !known {
			r = len(statusRank)
		}
		if r > rank {
			worst, rank = s.Status, r
		}
	}
	if len(worst) > 40 {
		worst = worst[:40]
	}
	return provider.AccountState{Status: worst, Running: worst == "OK"}, nil
}
