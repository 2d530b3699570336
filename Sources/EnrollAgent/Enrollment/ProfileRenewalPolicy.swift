import Renewal

extension ProfileConfig {
    /// The renewal settings of this profile as the scheduler takes them; the one place the
    /// runner, `status` and `check-config` build them from.
    var renewalPolicy: RenewalPolicy {
        RenewalPolicy(renewBefore: renewBefore, maximumJitter: renewJitter,
                      renewalThresholdPercent: renewalThresholdPercent)
    }
}
