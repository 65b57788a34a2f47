package djangoimport

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"

	"github.com/isis-project/isis/api"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// bulkTables are the tables a first import fills. When all of them are
// empty (the cutover: nobody can log in to isis yet), the import writes
// them without their indexes and foreign keys and builds those once at
// the end (a sort per index, one join per foreign key) instead of
// maintaining them row by row (a million foreign-key checks per table).
// The ledger (django_import) is written in bulk too (it holds no more than
// the geography's rows then).
var bulkTables = []string{"users", "profiles", "token_outstanding", "token_blacklisted", "django_import"}

// bulk is what a bulk write dropped, to be made again before commit.
type bulk struct {
	// restore is the DDL that makes the indexes and constraints again, in
	// order: indexes, unique constraints and primary keys, then foreign
	// keys.
	restore []string
	// emailIndex is the restore statement of the unique index of
	// users.email_key ("" if there is none such): made right after the
	// users are in, it finds whether two of them share a key for free.
	emailIndex string
	// orphans makes the restore statement it is keyed by hold (run once
	// when that fails on a row pointing nowhere): a token whose user Django
	// does not have (deleted) is nobody's.
	orphans map[string]string
}

// bulkEligible says whether the tables a first import fills are empty and
// owned by the import's role (dropping an index or constraint takes the
// owner; no superuser). It takes no lock: beginBulk checks again under one.
func bulkEligible(ctx context.Context, tx *sqlx.Tx) (bool, error) {
	var ok bool
	err := tx.GetContext(ctx, &ok, `SELECT bool_and(pg_has_role(c.relowner, 'USAGE')) AND count(*) = $2
		AND NOT EXISTS (SELECT 1 FROM users) AND NOT EXISTS (SELECT 1 FROM profiles)
		AND NOT EXISTS (SELECT 1 FROM token_outstanding) AND NOT EXISTS (SELECT 1 FROM token_blacklisted)
		FROM pg_class c WHERE c.oid = ANY($1::regclass[])`, "{"+strings.Join(bulkTables, ",")+"}", len(bulkTables))
	return ok, err
}

// beginBulk locks the tables (ACCESS EXCLUSIVE until the transaction ends),
// checks they are still empty, and drops their secondary indexes, unique
// constraints, primary keys and foreign keys, remembering their
// definitions. It returns
// nil, and changes nothing, when the lock is not granted within a few
// seconds (isis is serving: the import then writes with the indexes) or a
// table is no longer empty. Everything is in the import's transaction: a
// failed or interrupted import rolls the drops back with the rows.
func beginBulk(ctx context.Context, tx *sqlx.Tx) (*bulk, error) {
	if ok, err := bulkEligible(ctx, tx); err != nil || !ok {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT import_bulk`); err != nil {
		return nil, err
	}
	var lockTimeout string
	if err := tx.GetContext(ctx, &lockTimeout, `SELECT current_setting('lock_timeout')`); err != nil {
		return nil, err
	}
	giveUp := func() (*bulk, error) {
		_, err := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT import_bulk; RELEASE SAVEPOINT import_bulk`)
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '5s'`); err != nil {
		return nil, err
	}
	// The geography too, at once: dropping profiles' foreign keys takes
	// the same lock on the tables they point at.
	if _, err := tx.ExecContext(ctx, `LOCK TABLE `+strings.Join(bulkTables, ", ")+`, departments, municipalities IN ACCESS EXCLUSIVE MODE`); err != nil {
		return giveUp()
	}
	// Restores the setting, for the rest of the transaction.
	if _, err := tx.ExecContext(ctx, `SELECT set_config('lock_timeout', $1, true)`, lockTimeout); err != nil {
		return nil, err
	}
	if ok, err := bulkEligible(ctx, tx); err != nil || !ok {
		if err != nil {
			return nil, err
		}
		return giveUp()
	}
	tables := "{" + strings.Join(bulkTables, ",") + "}"
	var cons []struct {
		Table string `db:"tbl"`
		Name  string `db:"name"`
		Def   string `db:"def"`
		Type  string `db:"contype"`
	}
	// Unique constraints, foreign keys and primary keys (one sorted build
	// each instead of a probe of the index per row), but a primary key a
	// foreign key of another table than these points at (it could not be
	// dropped: none today).
	if err := tx.SelectContext(ctx, &cons, `SELECT c.conrelid::regclass::text AS tbl, quote_ident(c.conname) AS name,
		pg_get_constraintdef(c.oid) AS def, c.contype::text AS contype
		FROM pg_constraint c WHERE c.conrelid = ANY($1::regclass[])
			AND (c.contype IN ('u', 'f') OR c.contype = 'p' AND NOT EXISTS (SELECT 1 FROM pg_constraint f
				WHERE f.contype = 'f' AND f.confrelid = c.conrelid AND f.conrelid <> ALL($1::regclass[])))
		ORDER BY c.contype = 'f', c.conrelid::regclass::text, c.conname`, tables); err != nil {
		return nil, err
	}
	var idx []struct {
		Name string `db:"name"`
		Def  string `db:"def"`
	}
	// Indexes that back no constraint.
	if err := tx.SelectContext(ctx, &idx, `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
		FROM pg_index i WHERE i.indrelid = ANY($1::regclass[])
		AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x'))
		ORDER BY 1`, tables); err != nil {
		return nil, err
	}
	// The unique index of email_key alone.
	var emailIndex string
	if err := tx.GetContext(ctx, &emailIndex, `SELECT COALESCE(min(i.indexrelid::regclass::text), '') FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
		WHERE i.indrelid = 'users'::regclass AND i.indisunique AND i.indnatts = 1 AND a.attname = 'email_key'
			AND i.indpred IS NULL AND i.indexprs IS NULL`); err != nil {
		return nil, err
	}
	b := &bulk{orphans: map[string]string{}}
	var drop []string
	for i := len(cons) - 1; i >= 0; i-- { // foreign keys first
		c := cons[i]
		drop = append(drop, `ALTER TABLE `+c.Table+` DROP CONSTRAINT `+c.Name)
	}
	for _, i := range idx {
		drop = append(drop, `DROP INDEX `+i.Name)
		b.restore = append(b.restore, i.Def)
		if i.Name == emailIndex {
			b.emailIndex = i.Def
		}
	}
	for _, c := range cons { // unique constraints first
		q := `ALTER TABLE ` + c.Table + ` ADD CONSTRAINT ` + c.Name + ` ` + c.Def
		b.restore = append(b.restore, q)
		if c.Table == "token_outstanding" && c.Type == "f" {
			b.orphans[q] = `UPDATE token_outstanding t SET user_id = NULL WHERE user_id IS NOT NULL
				AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = t.user_id)`
		}
	}
	for _, q := range drop {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	// The index builds' sorts in memory (the database server's, for this
	// transaction; a setting any role may change). A parallel build shares
	// it between the leader and its workers (max_parallel_maintenance_workers,
	// 2 by default): a third of 256 MB still holds a third of the ledger's
	// two million keys at a million users (128 MB spilled to disk).
	if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT import_bulk; SET LOCAL maintenance_work_mem = '256MB'`); err != nil {
		return nil, err
	}
	return b, nil
}

// finish makes the indexes and constraints again: each index built by
// one sort, each foreign key checked by one join of its two tables, each
// unique constraint by its index.
func (b *bulk) finish(ctx context.Context, tx *sqlx.Tx) error {
	if b == nil {
		return nil
	}
	for _, q := range b.restore {
		fix := b.orphans[q]
		if fix == "" {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT import_fk`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, q)
		var pqErr *pq.Error
		if errors.As(err, &pqErr) && pqErr.Code == "23503" { // foreign_key_violation
			if _, err = tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT import_fk`); err == nil {
				if _, err = tx.ExecContext(ctx, fix); err == nil {
					_, err = tx.ExecContext(ctx, q)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
		if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT import_fk`); err != nil {
			return err
		}
	}
	b.restore = nil
	return nil
}

// makeEmailIndex makes the unique index of users.email_key (emailIndex)
// and says whether it could: false when two users share a key (nothing
// changed then), or when there is no such index to make.
func (b *bulk) makeEmailIndex(ctx context.Context, tx *sqlx.Tx) (bool, error) {
	if b.emailIndex == "" {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT import_email`); err != nil {
		return false, err
	}
	_, err := tx.ExecContext(ctx, b.emailIndex)
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23505" { // unique_violation
		_, err := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT import_email; RELEASE SAVEPOINT import_email`)
		return false, err
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", b.emailIndex, err)
	}
	if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT import_email`); err != nil {
		return false, err
	}
	for i, q := range b.restore {
		if q == b.emailIndex {
			b.restore = append(b.restore[:i], b.restore[i+1:]...)
			break
		}
	}
	b.emailIndex = ""
	return true, nil
}

// copyBatch is a batch of a bulk import's rows, checked, in COPY's text
// format: in their table (rows), and also (their ledger rows, their
// blacklistings) in another.
type copyBatch struct {
	rows, also copyText
	n          int // rows
}

// batcher is what a bulk import's reading writes its rows into: a row in
// rows (and also), then done.
type batcher struct {
	*copyBatch
	send func() error
}

// done ends a row; a full batch (bulkBatch rows or bulkBytes bytes) goes
// to the writer.
func (w *batcher) done() error {
	if w.n++; w.n < bulkBatch && len(w.rows.b)+len(w.also.b) < bulkBytes {
		return nil
	}
	return w.send()
}

// pipeline runs produce in a goroutine of its own, which hands what it
// writes over in batches, and consume on each batch in the caller's:
// reading the old database and writing isis's overlap, with two batches
// in memory at most. A failure on either side stops both.
func pipeline(ctx context.Context, produce func(ctx context.Context, w *batcher) error, consume func(*copyBatch) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	full := make(chan *copyBatch, 1)
	free := make(chan *copyBatch, 2)
	free <- &copyBatch{}
	free <- &copyBatch{}
	done := make(chan error, 1)
	go func() {
		defer close(full)
		w := &batcher{copyBatch: <-free}
		w.send = func() error {
			select {
			case full <- w.copyBatch:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case w.copyBatch = <-free:
				w.rows.reset()
				w.also.reset()
				w.n = 0
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err := produce(ctx, w)
		if err == nil && w.n > 0 {
			err = w.send()
		}
		done <- err
	}()
	var err error
	for batch := range full {
		if err == nil {
			if err = consume(batch); err != nil {
				cancel()
			}
		}
		free <- batch
	}
	if perr := <-done; err == nil {
		err = perr
	}
	return err
}

// A bulk import COPYs rows by batches of bulkBatch rows, or fewer when
// they take more than bulkBytes bytes (8 KiB bios).
const (
	bulkBatch = 5000
	bulkBytes = 1 << 20
)

// copyBulk COPYs a batch's rows into table (cols), then its also into
// also (alsoCols).
func copyBulk(ctx context.Context, conn *sqlx.Conn, table string, cols []string, also string, alsoCols []string) func(*copyBatch) error {
	return func(b *copyBatch) error {
		if err := copyRaw(ctx, conn, table, cols, b.rows.b); err != nil {
			return err
		}
		return copyRaw(ctx, conn, also, alsoCols, b.also.b)
	}
}

var ledgerCols = []string{"kind", "key", "digest", "imported_at"}

// bulkRead is the import's reading when isis's tables are empty (b holds
// them, locked, without their indexes and foreign keys): each row is
// checked on its own and COPYed straight into isis's table, with its
// ledger row, a batch at a time while the next is read; then the checks
// between rows run on the tables themselves. A conflict stops the import
// before commit, as ever: the transaction, and the rows, are rolled back.
func (p *plan) bulkRead(ctx context.Context, tx *sqlx.Tx, b *bulk) error {
	if err := p.bulkUsers(ctx, tx, b); err != nil {
		return err
	}
	if err := p.bulkProfiles(ctx, tx); err != nil {
		return err
	}
	return p.bulkTokens(ctx, tx)
}

func (p *plan) bulkUsers(ctx context.Context, tx *sqlx.Tx, b *bulk) error {
	sum := p.sum
	cols := append([]string{"id"}, userCols...)
	cols = append(cols, "email_key", "search_text")
	now := string(appendTime(nil, p.now))
	if err := pipeline(ctx, func(ctx context.Context, w *batcher) error {
		return p.src.eachUserText(ctx, func(u *SourceUser, joined, login sql.RawBytes) error {
			sum.Users.Source++
			if p.checkUser(u) {
				return nil
			}
			e := storedEmail(u.Email)
			// the same search text isis's store writes (postgres.userSearchText)
			w.rows.int(u.ID).str(e).str(u.Password).str(u.FirstName).str(u.LastName).bool(u.IsStaff).bool(u.IsSuperuser).bool(u.IsActive).
				text(joined).text(login).str(emailKey(e)).str(api.Fold(e + " " + u.FirstName + " " + u.LastName)).end()
			w.also.raw(kindUser).int(u.ID).str(u.Digest).raw(now).end()
			return w.done()
		})
	}, copyBulk(ctx, p.conn, "users", cols, "django_import", ledgerCols)); err != nil {
		return err
	}
	p.changedUsers = sum.Users.Source
	p.progress("read %d users", sum.Users.Source)
	// Two rows that are one address in isis's normal form (isis had none):
	// none if the unique index of the form can be made (one sort, which
	// the import needs anyway), else they are looked for.
	if ok, err := b.makeEmailIndex(ctx, tx); ok || err != nil {
		return err
	}
	q, err := tx.QueryxContext(ctx, `SELECT id, email, email_key, true FROM users WHERE email_key IN
		(SELECT email_key FROM users GROUP BY email_key HAVING count(*) > 1) ORDER BY email_key, id`)
	if err != nil {
		return err
	}
	return p.emailConflicts(q)
}

func (p *plan) bulkProfiles(ctx context.Context, tx *sqlx.Tx) error {
	if p.src.Schema.ProfileTable == "" {
		return nil
	}
	sum := p.sum
	cols := []string{"id", "user_id", "phone", "bio", "birth_date", "department_code", "municipality_code", "avatar", "updated_at"}
	now := string(appendTime(nil, p.now))
	// A hash of each avatar written (8 bytes a profile, a user has one at
	// most): the query for two users with one avatar runs only when two
	// hashes are equal.
	seed := maphash.MakeSeed()
	avatars := make([]uint64, 0, sum.Users.Source)
	if err := pipeline(ctx, func(ctx context.Context, w *batcher) error {
		return p.src.eachProfileText(ctx, func(pr *SourceProfile, birth, updated sql.RawBytes) error {
			sum.Profiles.Source++
			if p.checkProfile(pr) {
				return nil
			}
			if pr.Avatar != "" {
				avatars = append(avatars, maphash.String(seed, pr.Avatar))
			}
			if updated == nil { // as profileDates
				updated = sql.RawBytes(now)
			}
			w.rows.int(pr.ID).int(pr.UserID).str(pr.Phone).str(pr.Bio).text(birth).
				nullString(pr.DepartmentCode).nullString(pr.MunicipalityCode).str(pr.Avatar).text(updated).end()
			w.also.raw(kindProfile).int(pr.ID).str(pr.Digest).raw(now).end()
			return w.done()
		})
	}, copyBulk(ctx, p.conn, "profiles", cols, "django_import", ledgerCols)); err != nil {
		return err
	}
	p.changedProfiles = sum.Profiles.Source
	p.progress("read %d profiles, %d departments, %d municipalities", sum.Profiles.Source, len(p.src.Departments), len(p.src.Municipalities))
	// Two users with one avatar (isis had none).
	slices.Sort(avatars)
	shared := false
	for i := 1; i < len(avatars) && !shared; i++ {
		shared = avatars[i] == avatars[i-1]
	}
	if !shared {
		return nil
	}
	q, err := tx.QueryxContext(ctx, `SELECT user_id, avatar, id FROM profiles WHERE avatar IN
		(SELECT avatar FROM profiles WHERE avatar <> '' GROUP BY avatar HAVING count(*) > 1) ORDER BY avatar, user_id`)
	if err != nil {
		return err
	}
	return p.avatarConflicts(q)
}

// bulkTokens writes the live tokens with ids of isis's sequence (the
// blacklisted ones refer to them) and without a user Django does not have.
func (p *plan) bulkTokens(ctx context.Context, tx *sqlx.Tx) error {
	if p.src.Schema.OutstandingTable == "" {
		return nil
	}
	sum := p.sum
	var err error
	if p.tokens, _, _, err = p.src.tokenSet(ctx); err != nil {
		return err
	}
	var id int64
	var seq string
	if err := tx.GetContext(ctx, &seq, `SELECT pg_get_serial_sequence('token_outstanding', 'id')`); err != nil {
		return err
	}
	if err := tx.GetContext(ctx, &id, `SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM `+seq); err != nil {
		return err
	}
	if err := pipeline(ctx, func(ctx context.Context, w *batcher) error {
		return p.src.eachTokenText(ctx, func(tk *SourceToken, created, expires, black sql.RawBytes) error {
			w.rows.int(id).str(tk.JTI)
			if tk.UserID.Valid {
				w.rows.int(tk.UserID.Int64)
			} else {
				w.rows.null()
			}
			w.rows.text(created).text(expires).end()
			sum.OutstandingTokens.Source++
			if black != nil {
				w.also.int(id).text(black).end()
				sum.BlacklistedTokens.Source++
			}
			id++
			return w.done()
		})
	}, copyBulk(ctx, p.conn, "token_outstanding", []string{"id", "jti", "user_id", "created_at", "expires_at"},
		"token_blacklisted", []string{"token_id", "blacklisted_at"})); err != nil {
		return err
	}
	// A token of a user Django does not have (deleted) is made nobody's
	// when its foreign key is made again (finish).
	sum.OutstandingTokens.Created, sum.BlacklistedTokens.Created = sum.OutstandingTokens.Source, sum.BlacklistedTokens.Source
	p.progress("read %d live refresh tokens (%d expired ones left behind)", sum.OutstandingTokens.Source, sum.ExpiredTokens)
	return nil
}

// bulkWrite ends a bulk import: the geography, then the indexes and
// foreign keys (the rows are in already).
func (p *plan) bulkWrite(ctx context.Context, tx *sqlx.Tx, b *bulk) error {
	if err := p.writeGeography(ctx, tx); err != nil {
		return err
	}
	sum := p.sum
	sum.Users.Created, sum.Profiles.Created = p.changedUsers, p.changedProfiles
	p.progress("users: %d created, %d updated, %d unchanged", sum.Users.Created, sum.Users.Updated, sum.Users.Unchanged)
	if p.src.Schema.ProfileTable != "" {
		p.progress("profiles: %d created, %d updated, %d unchanged", sum.Profiles.Created, sum.Profiles.Updated, sum.Profiles.Unchanged)
	}
	if p.src.Schema.OutstandingTable != "" {
		p.progress("refresh tokens: %d outstanding and %d blacklisted created", sum.OutstandingTokens.Created, sum.BlacklistedTokens.Created)
	}
	if err := p.writeTokenSet(ctx, tx); err != nil {
		return wrapWrite("ledger", err)
	}
	if err := b.finish(ctx, tx); err != nil {
		return wrapWrite("indexes and foreign keys", err)
	}
	p.progress("indexes and foreign keys made")
	return p.writeGeoLedger(ctx, tx) // with the ledger's key (ON CONFLICT)
}
