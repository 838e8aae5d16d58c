//! Tour bookings, persisted in a LanceDB table. A slot (property, tour type, start) is booked at most once: the
//! insert is a merge keyed on the slot that only inserts when no row has that key. A move is one merge too: the new
//! slot's row is inserted and the old one deleted in the same commit, so a crash leaves one or the other, never
//! neither or both.
//!
//! Across processes (two servers on one store) the slot is the table's unenforced primary key: Lance then records
//! the keys each merge inserted, so of two commits inserting the same slot the second conflicts, is retried against
//! the first's rows, and finds the slot taken.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch, RecordBatchIterator, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDateTime;
use futures::TryStreamExt;
use lancedb::expr::{col, lit};
use lancedb::query::ExecutableQuery;
use lancedb::table::NewColumnTransform;
use lancedb::Table;
use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::state::TourType;
use super::AgentError;
use crate::memory::store::{connect, open_or_create};

const TABLE: &str = "bookings";
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M";
/// The column keyed on: one row per booked slot.
const SLOT: &str = "slot";
/// Lance's field metadata marking the primary key (its position in the key), and its older boolean form.
const PRIMARY_KEY_POSITION: &str = "lance-schema:unenforced-primary-key:position";
const PRIMARY_KEY_FLAG: &str = "lance-schema:unenforced-primary-key";

/// A booked tour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Booking {
    /// Confirmation code read to the caller.
    pub confirmation: String,
    /// Property id.
    pub property: String,
    /// Tour type.
    pub tour_type: TourType,
    /// Start, office wall clock.
    pub start: NaiveDateTime,
    /// Caller's user id.
    pub user_id: String,
    /// Caller's name.
    pub name: String,
    /// Caller's email.
    pub email: String,
    /// Caller's phone.
    pub phone: String,
    /// Times the tour was changed (an iCalendar SEQUENCE: 0 when booked, one more per move).
    #[serde(default)]
    pub sequence: u32,
}

/// What happened to a move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveOutcome {
    /// Moved: the tour as it was, and as it is now.
    Moved {
        /// Before the move.
        from: Booking,
        /// After the move (same code, one more sequence).
        to: Booking,
    },
    /// Someone else holds the new slot; the tour stays as it was.
    Taken,
    /// No tour has that code.
    NotFound,
}

/// What happened to a booking request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookOutcome {
    /// Stored.
    Booked(Booking),
    /// Someone else holds the slot.
    Taken,
}

/// The bookings table. Cheap to clone.
#[derive(Clone)]
pub struct BookingStore {
    table: Table,
    /// Serialises this process's bookings so two calls racing for one slot are decided in order.
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Every booking as of one table version. Each turn of each call reads the bookings; a LanceDB scan apiece
    /// was most of a turn's CPU under `bench load`, so the rows are read once per version (a write here, or
    /// another process's seen after the connection's read-consistency interval, makes a new one).
    snapshot: Arc<std::sync::Mutex<Option<Snapshot>>>,
}

/// The rows of one table version.
struct Snapshot {
    version: u64,
    rows: Arc<Vec<Booking>>,
}

fn schema() -> SchemaRef {
    let text = |n: &str| Field::new(n, DataType::Utf8, false);
    let slot = text(SLOT).with_metadata([(PRIMARY_KEY_POSITION.to_string(), "1".to_string())].into());
    Arc::new(Schema::new(vec![
        slot,
        text("confirmation"),
        text("property"),
        text("tour_type"),
        text("start"),
        text("user_id"),
        text("name"),
        text("email"),
        text("phone"),
        sequence_field(),
    ]))
}

/// Whether the table's primary key is the slot.
async fn keyed_on_slot(table: &Table) -> Result<bool, AgentError> {
    let schema = table.schema().await?;
    let field = schema.field_with_name(SLOT).map_err(|e| AgentError::Bookings(e.to_string()))?;
    Ok([PRIMARY_KEY_POSITION, PRIMARY_KEY_FLAG].iter().any(|key| field.metadata().contains_key(*key)))
}

/// Added to tables made before moves existed (their rows read as sequence 0).
fn sequence_field() -> Field {
    Field::new("sequence", DataType::UInt32, true)
}

fn slot_key(property: &str, tour: TourType, start: NaiveDateTime) -> String {
    format!("{property}|{}|{}", tour.spoken(), start.format(TIME_FORMAT))
}

fn tour_from(s: &str) -> Result<TourType, AgentError> {
    match s {
        "in-person" => Ok(TourType::InPerson),
        "virtual" => Ok(TourType::Virtual),
        other => Err(AgentError::Bookings(format!("unknown tour type {other:?} in the bookings table"))),
    }
}

/// A confirmation code as callers and staff type it (any case, surrounding blanks) normalised, or a clear error:
/// 4 to 16 letters and digits.
pub fn confirmation_code(code: &str) -> Result<String, AgentError> {
    let code = code.trim().to_ascii_uppercase();
    if (4..=16).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(code)
    } else {
        Err(AgentError::InvalidCode(code.chars().take(32).collect()))
    }
}

impl BookingStore {
    /// Opens (or creates) the bookings table in the LanceDB at `uri`.
    pub async fn open(uri: &str) -> Result<Self, AgentError> {
        let db = connect(uri).await?;
        let table = open_or_create(&db, TABLE, schema()).await?;
        if table.schema().await?.field_with_name("sequence").is_err() {
            let added = Arc::new(Schema::new(vec![sequence_field()]));
            table.add_columns().transform(NewColumnTransform::AllNulls(added)).execute().await?;
        }
        if !keyed_on_slot(&table).await? {
            // A table made before the key existed. Two servers opening it at once may both try: the loser finds
            // the key set.
            if let Err(e) = table.set_unenforced_primary_key([SLOT]).await {
                if !keyed_on_slot(&table).await? {
                    return Err(e.into());
                }
            }
        }
        Ok(Self { table, lock: Arc::default(), snapshot: Arc::default() })
    }

    /// Every booking, as of the table's current version.
    async fn rows(&self) -> Result<Arc<Vec<Booking>>, AgentError> {
        let version = self.table.version().await?;
        if let Some(rows) = self.cached(|s| s.as_ref().filter(|s| s.version == version).map(|s| s.rows.clone())) {
            return Ok(rows);
        }
        // Read after the version was taken, so the rows are at least that new: a write in between only makes the
        // next call read again, never serves stale rows.
        let rows = Arc::new(self.read_rows().await?);
        self.cached(|s| {
            if s.as_ref().is_none_or(|s| s.version < version) {
                *s = Some(Snapshot { version, rows: rows.clone() });
            }
        });
        Ok(rows)
    }

    /// Runs `f` on the cached snapshot (never across an await).
    fn cached<T>(&self, f: impl FnOnce(&mut Option<Snapshot>) -> T) -> T {
        // Whole-value replacements only: a panic elsewhere cannot leave it half-written.
        f(&mut self.snapshot.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Reads every row.
    #[instrument(skip_all, name = "bookings.read")]
    async fn read_rows(&self) -> Result<Vec<Booking>, AgentError> {
        let batches: Vec<RecordBatch> = self.table.query().execute().await?.try_collect().await?;
        let mut out = Vec::new();
        for b in &batches {
            let c = |n: &str| {
                b.column_by_name(n)
                    .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                    .ok_or_else(|| AgentError::Bookings(format!("bookings column {n} is missing")))
            };
            let (conf, prop, tour, start, user, name, email, phone) = (
                c("confirmation")?,
                c("property")?,
                c("tour_type")?,
                c("start")?,
                c("user_id")?,
                c("name")?,
                c("email")?,
                c("phone")?,
            );
            let sequence = b.column_by_name("sequence").and_then(|c| c.as_any().downcast_ref::<UInt32Array>());
            for i in 0..b.num_rows() {
                out.push(Booking {
                    confirmation: conf.value(i).into(),
                    property: prop.value(i).into(),
                    tour_type: tour_from(tour.value(i))?,
                    start: NaiveDateTime::parse_from_str(start.value(i), TIME_FORMAT)
                        .map_err(|e| AgentError::Bookings(format!("bad start time in the bookings table: {e}")))?,
                    user_id: user.value(i).into(),
                    name: name.value(i).into(),
                    email: email.value(i).into(),
                    phone: phone.value(i).into(),
                    sequence: sequence.filter(|s| !s.is_null(i)).map_or(0, |s| s.value(i)),
                });
            }
        }
        Ok(out)
    }

    /// Start times already booked for this property and tour type.
    #[instrument(skip_all, name = "bookings.taken")]
    pub async fn taken(&self, property: &str, tour: TourType) -> Result<HashSet<NaiveDateTime>, AgentError> {
        let rows = self.rows().await?;
        Ok(rows.iter().filter(|b| b.property == property && b.tour_type == tour).map(|b| b.start).collect())
    }

    /// A caller's bookings.
    #[instrument(skip_all, name = "bookings.for_user")]
    pub async fn for_user(&self, user_id: &str) -> Result<Vec<Booking>, AgentError> {
        Ok(self.rows().await?.iter().filter(|b| b.user_id == user_id).cloned().collect())
    }

    /// Every booking, soonest first; with `from`, only those starting then or later.
    #[instrument(skip_all, name = "bookings.list")]
    pub async fn list(&self, from: Option<NaiveDateTime>) -> Result<Vec<Booking>, AgentError> {
        let mut all: Vec<Booking> =
            self.rows().await?.iter().filter(|b| from.is_none_or(|t| b.start >= t)).cloned().collect();
        all.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.confirmation.cmp(&b.confirmation)));
        Ok(all)
    }

    /// The booking with this confirmation code (any case), if any.
    #[instrument(skip_all, name = "bookings.by_code")]
    pub async fn by_code(&self, code: &str) -> Result<Option<Booking>, AgentError> {
        let code = confirmation_code(code)?;
        Ok(self.rows().await?.iter().find(|b| b.confirmation == code).cloned())
    }

    /// Cancels the booking with this code: its row goes, so its slot is open again. Returns it, or `None` when no
    /// booking has the code.
    #[instrument(skip_all, name = "bookings.cancel")]
    pub async fn cancel(&self, code: &str) -> Result<Option<Booking>, AgentError> {
        let _guard = self.lock.lock().await;
        let Some(booking) = self.by_code(code).await? else { return Ok(None) };
        self.table.delete(&col("confirmation").eq(lit(booking.confirmation.clone()))).await?;
        Ok(Some(booking))
    }

    /// Books the slot unless it is taken.
    #[instrument(skip_all, name = "bookings.book")]
    pub async fn book(&self, booking: Booking) -> Result<BookOutcome, AgentError> {
        let _guard = self.lock.lock().await;
        let mut merge = self.table.merge_insert(&[SLOT]);
        merge.when_not_matched_insert_all();
        let result = merge.execute(Box::new(one_row(&booking)?)).await?;
        Ok(if result.num_inserted_rows == 1 { BookOutcome::Booked(booking) } else { BookOutcome::Taken })
    }

    /// Moves the tour with this code to `start` (and `tour_type`, when given): one commit inserts the new slot's
    /// row and deletes the old one. The code stays; the sequence goes up by one.
    #[instrument(skip_all, name = "bookings.move")]
    pub async fn reschedule(
        &self,
        code: &str,
        start: NaiveDateTime,
        tour_type: Option<TourType>,
    ) -> Result<MoveOutcome, AgentError> {
        let _guard = self.lock.lock().await;
        let Some(from) = self.by_code(code).await? else { return Ok(MoveOutcome::NotFound) };
        let to = Booking {
            start,
            tour_type: tour_type.unwrap_or(from.tour_type),
            sequence: from.sequence + 1,
            ..from.clone()
        };
        let old_slot = slot_key(&from.property, from.tour_type, from.start);
        if slot_key(&to.property, to.tour_type, to.start) == old_slot {
            return Ok(MoveOutcome::Moved { to: from.clone(), from });
        }
        let mut merge = self.table.merge_insert(&[SLOT]);
        merge.when_not_matched_insert_all().when_not_matched_by_source_delete_expr(col(SLOT).eq(lit(old_slot)));
        let result = merge.execute(Box::new(one_row(&to)?)).await?;
        if result.num_inserted_rows == 1 {
            return Ok(MoveOutcome::Moved { from, to });
        }
        // The new slot was taken (by another process: this one holds the lock), and the same commit deleted the
        // old row: put it back.
        if result.num_deleted_rows > 0 {
            let mut merge = self.table.merge_insert(&[SLOT]);
            merge.when_not_matched_insert_all();
            merge.execute(Box::new(one_row(&from)?)).await?;
        }
        Ok(MoveOutcome::Taken)
    }
}

/// One booking as a one-row batch of the table.
fn one_row(booking: &Booking) -> Result<impl arrow_array::RecordBatchReader + Send + 'static, AgentError> {
    let one = |s: &str| Arc::new(StringArray::from(vec![s.to_string()])) as arrow_array::ArrayRef;
    let batch = RecordBatch::try_new(
        schema(),
        vec![
            one(&slot_key(&booking.property, booking.tour_type, booking.start)),
            one(&booking.confirmation),
            one(&booking.property),
            one(booking.tour_type.spoken()),
            one(&booking.start.format(TIME_FORMAT).to_string()),
            one(&booking.user_id),
            one(&booking.name),
            one(&booking.email),
            one(&booking.phone),
            Arc::new(UInt32Array::from(vec![booking.sequence])),
        ],
    )
    .map_err(|e| AgentError::Bookings(e.to_string()))?;
    Ok(RecordBatchIterator::new(vec![Ok(batch)], schema()))
}
