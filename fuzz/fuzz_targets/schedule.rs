//! Periodic-task schedules as an admin types them: crontab expressions (six fields) and
//! intervals. Any text is accepted or refused with a message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxidot::scheduler::{check_schedule, describe};
use oxidot::store::TaskSchedule;

fuzz_target!(|input: (&str, u64, &str)| {
    let (expression, every, period) = input;
    for schedule in [
        TaskSchedule::Crontab {
            expression: expression.to_owned(),
        },
        TaskSchedule::Interval {
            every,
            period: period.to_owned(),
        },
    ] {
        if check_schedule(&schedule).is_ok() {
            let _ = describe(&schedule);
        }
    }
});
