package worker

// warnWarmup makes an account-level warning of the provider (a 429,
// limit_exceeded, an escalated cannot_resend_yet: every decision that
// pauses the account) step the account's ramp back and hold it too
// (docs/warmup.md). A disabled account's ramp is left as it is: its
// credentials, not its pace, are at fault.
func warnWarmup(d *Decision) {
	if !d.Account.PauseUntil.IsZero() && !d.Account.Disable && d.Account.WarmupWarning == "" {
		d.Account.WarmupWarning = d.Account.Reason
	}
}
